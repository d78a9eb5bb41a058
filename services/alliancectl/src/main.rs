//! `alliancectl`: the command-line client of the alliance planning backend (`alliance.v1`).
//!
//! Every edit is one `PlanCommands` RPC; the reply (or the refusal) is printed as one text line
//! or one JSON object, and the exit code says what kind of failure it was (see [`errors::Exit`]).
//! Reads (`posture`, `series`, `diff`, `decisions`) are one `PostureQueries` RPC each, printed as
//! tables or one JSON object; `watch` prints one line (or JSON object) per event as it arrives.
//! `simulate` streams a Monte Carlo run (`Simulation` RPCs): progress on stderr, then the result.
//! `status` checks the health of one or more servers and how far their read models lag.

mod audit;
mod chart;
mod cli;
mod connect;
mod errors;
mod output;
mod parse;
mod session;
mod status;

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Cli, Cmd};
use crate::output::{Format, Reply};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::with_profile() {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("{}", output::render_error(&err, Format::Text));
            return ExitCode::from(err.exit.code());
        }
    };
    let outcome = match (&cli.command, cli.session()) {
        (Cmd::Status, _) => match cli
            .server
            .iter()
            .try_for_each(|server| cli.check_clear(server))
            .and_then(|()| session::bearer(cli.token.as_ref()))
        {
            Ok(auth) => status::run(
                &cli.server,
                cli.tls.as_ref(),
                auth,
                Duration::from_secs(cli.timeout),
                cli.output,
            )
            .await
            .map(|()| Reply::Streamed),
            Err(err) => Err(err),
        },
        (command, Ok(mut session)) => cli::run(&mut session, command, cli.output).await,
        (_, Err(err)) => Err(err),
    };
    match outcome {
        // Printed as it arrived.
        Ok(Reply::Streamed) => ExitCode::SUCCESS,
        Ok(reply) => {
            println!("{}", output::render(&reply, cli.output));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}", output::render_error(&err, cli.output));
            ExitCode::from(err.exit.code())
        }
    }
}
