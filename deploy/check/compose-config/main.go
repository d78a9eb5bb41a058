// compose-config loads a Compose file the way `docker compose config` does (compose-go: the
// Compose Specification's JSON schema, interpolation, extension merging and the consistency
// checks of depends_on, volumes and networks) and prints the resolved model, without a
// container engine. Used by scripts/deploy-check.sh.
//
//	compose-config [-env KEY=VALUE]... [-profile NAME]... FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }

func (e *envFlags) Set(value string) error {
	if !strings.Contains(value, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", value)
	}
	*e = append(*e, value)
	return nil
}

type listFlags []string

func (l *listFlags) String() string { return strings.Join(*l, ",") }

func (l *listFlags) Set(value string) error {
	*l = append(*l, value)
	return nil
}

func main() {
	var env envFlags
	var profiles listFlags
	flag.Var(&env, "env", "KEY=VALUE set for interpolation (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable, like docker compose --profile (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: compose-config [-env KEY=VALUE]... [-profile NAME]... FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(flag.Args(),
		cli.WithOsEnv,
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-config:", err)
	os.Exit(1)
}
