//! `rebuild`: rebuild every read model from the log (admin role).

use alliance_proto::v1;
use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;

use crate::errors::CliError;
use crate::output::Reply;
use crate::session::{Session, next_within, within};

/// Rebuilds the read models, showing the progress on stderr; `--timeout` bounds the wait for
/// each report, not the whole rebuild.
pub(super) async fn run(s: &mut Session) -> Result<Reply, CliError> {
    let request = s.open_request(v1::RebuildRequest {});
    let mut admin = ReadModelAdminClient::new(s.channel.clone());
    let mut progress = within(s.timeout, admin.rebuild(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    loop {
        let next = next_within(s.timeout, &mut progress, "").await;
        match next {
            Ok(Some(v1::RebuildProgress {
                done: Some(done), ..
            })) => {
                return Ok(Reply::Rebuilt(done));
            }
            // The last report of a read says it is done: nothing to show.
            Ok(Some(p)) if p.events_read >= p.events_total => {}
            Ok(Some(p)) => {
                let percent = (p.events_read * 100)
                    .checked_div(p.events_total)
                    .unwrap_or(0);
                eprintln!(
                    "rebuilding: {} of about {} events read ({}%)",
                    p.events_read,
                    p.events_total,
                    percent.min(100)
                );
            }
            Ok(None) => {
                return Err(s.failure(
                    &tonic::Status::unavailable("the server ended the rebuild without a result"),
                    None,
                ));
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
}
