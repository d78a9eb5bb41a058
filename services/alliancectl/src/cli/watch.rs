//! `watch`: a plan's events, or its posture on one date, as they are recorded.

use std::io::Write;

use alliance_domain::Date;
use alliance_proto::v1;
use clap::Args;
use uuid::Uuid;

use super::flags::date;
use crate::errors::CliError;
use crate::output::{Format, Render, Reply};
use crate::parse;
use crate::session::{Session, within};

#[derive(Args)]
pub(crate) struct WatchArgs {
    /// The plan to watch.
    #[arg(long, env = "ALLIANCE_PLAN")]
    pub(crate) plan: Uuid,
    /// The first version to print (default: 1, the whole history).
    #[arg(long, value_name = "VERSION")]
    pub(crate) from_version: Option<u64>,
    /// Stop (exit 0) after this many events (postures with --posture-on); default: run until
    /// interrupted.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
    /// Watch the posture on this date instead of the events: printed as it stands, then again
    /// each time an edit changes it.
    #[arg(long, value_name = "DATE", value_parser = parse::date, conflicts_with = "from_version")]
    pub(crate) posture_on: Option<Date>,
    /// With --posture-on: apply proposed decisions too (what-if).
    #[arg(long, requires = "posture_on")]
    pub(crate) what_if: bool,
    /// Wait until the server's read model holds this version of the plan before watching (read
    /// your writes: a plan the read model does not hold yet is not found).
    #[arg(long, value_name = "VERSION")]
    pub(crate) min_version: Option<u64>,
}

/// Prints the plan's events as they arrive, one line each, until `count` of them (if given).
pub(super) async fn watch(
    s: &mut Session,
    args: &WatchArgs,
    format: Format,
) -> Result<Reply, CliError> {
    if let Some(on) = args.posture_on {
        return watch_posture(s, args, on, format).await;
    }
    let request = s.open_request(v1::WatchPlanRequest {
        plan_id: args.plan.to_string(),
        from_version: args.from_version.unwrap_or(0),
        min_version: args.min_version.unwrap_or(0),
    });
    // Only opening the stream is bounded by --timeout; events may be far apart.
    let events = within(s.timeout, s.queries.watch_plan(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    print_each(s, events, args.count, "event", format).await
}

/// Prints the posture on `on`, then again each time it changes.
pub(crate) async fn watch_posture(
    s: &mut Session,
    args: &WatchArgs,
    on: Date,
    format: Format,
) -> Result<Reply, CliError> {
    let request = s.open_request(v1::WatchPostureRequest {
        plan_id: args.plan.to_string(),
        valid_on: date(on),
        include_proposed: args.what_if,
        min_version: args.min_version.unwrap_or(0),
    });
    // Only opening the stream is bounded by --timeout; changes may be far apart.
    let postures = within(s.timeout, s.queries.watch_posture(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    print_each(s, postures, args.count, "posture", format).await
}

/// Prints each message of `stream` as it arrives (flushed one by one; a closed stdout, e.g.
/// `| head -3`, ends the watch) until `count` of them, if given; `what` names them when the
/// server ends the stream first.
async fn print_each<T: Render>(
    s: &Session,
    mut stream: tonic::Streaming<T>,
    count: Option<u64>,
    what: &str,
    format: Format,
) -> Result<Reply, CliError> {
    let mut seen: u64 = 0;
    while count.is_none_or(|count| seen < count) {
        match stream.message().await {
            Ok(Some(message)) => {
                if writeln!(std::io::stdout(), "{}", message.render(format)).is_err() {
                    return Ok(Reply::Streamed);
                }
                seen += 1;
            }
            Ok(None) => {
                return Err(s.failure(
                    &tonic::Status::unavailable(format!(
                        "the server ended the {what} stream after {seen} {what}s"
                    )),
                    None,
                ));
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
    Ok(Reply::Streamed)
}
