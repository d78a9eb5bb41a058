//! A request whose bytes do not decode is the caller's error, not the server's.
//!
//! tonic's protobuf codec answers a message that does not decode (bad wire format, a string that
//! is not UTF-8) with `INTERNAL`, and a body cut short with `INTERNAL` too; `INTERNAL` is kept
//! for bugs. [`MalformedLayer`] rewrites those answers to `INVALID_ARGUMENT` with a
//! `google.rpc.BadRequest` naming the field where decoding stopped (from the decoder's location
//! stack, e.g. `element.name`), before the security log and the telemetry see them.

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// What prost's decode error says first (its `Display`).
const DECODE_ERROR: &str = "failed to decode Protobuf message: ";
/// What tonic says of a request body that ends inside a message.
const TRUNCATED: &str = "Unexpected EOF decoding stream.";

/// The field path a decode error names: the stack's `Message.field` entries, innermost first,
/// joined outermost first (`ForceElement.name: RegisterForceElementRequest.element: …` is
/// `element.name`); `None` when it names none.
fn field_path(message: &str) -> Option<String> {
    let rest = message.strip_prefix(DECODE_ERROR)?;
    let mut fields: Vec<&str> = rest
        .split(": ")
        .map_while(|segment| {
            let (message, field) = segment.rsplit_once('.')?;
            let ident = |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            (ident(message) && ident(field)).then_some(field)
        })
        .collect();
    fields.reverse();
    (!fields.is_empty()).then(|| fields.join("."))
}

/// The status a decode failure should have been, or `None` for any other status.
pub fn reclassify(status: &tonic::Status) -> Option<tonic::Status> {
    if status.code() != Code::Internal {
        return None;
    }
    let message = status.message();
    let field = if message == TRUNCATED {
        "(message)".to_owned()
    } else if message.starts_with(DECODE_ERROR) {
        field_path(message).unwrap_or_else(|| "(message)".to_owned())
    } else {
        return None;
    };
    let description = format!("the request does not decode: {message}");
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field.clone(), description.clone());
    Some(tonic::Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        details,
    ))
}

/// Rewrites tonic's `INTERNAL` answer to a request that does not decode as `INVALID_ARGUMENT`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MalformedLayer;

impl<S> tower::Layer<S> for MalformedLayer {
    type Service = MalformedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MalformedService { inner }
    }
}

#[derive(Clone)]
pub struct MalformedService<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for MalformedService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    alliance_stdx::forward_service!();

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            // A request that does not decode is refused before the handler runs: a
            // trailers-only response, its status in the headers.
            let fixed = tonic::Status::from_header_map(response.headers())
                .as_ref()
                .and_then(reclassify);
            if let Some(status) = fixed
                && let Err(error) = status.add_header(response.headers_mut())
            {
                tracing::error!(%error, "rewriting a decode failure's status failed");
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_path_is_read_from_the_decoder_s_stack() {
        assert_eq!(
            field_path(
                "failed to decode Protobuf message: ForceElement.name: RegisterForceElementRequest.element: invalid string value: data is not UTF-8 encoded"
            )
            .as_deref(),
            Some("element.name")
        );
        assert_eq!(
            field_path("failed to decode Protobuf message: invalid wire type value: 7"),
            None
        );
        let other = tonic::Status::internal("something else broke");
        assert!(reclassify(&other).is_none());
        let fixed = reclassify(&tonic::Status::internal(
            "failed to decode Protobuf message: invalid wire type value: 7",
        ))
        .unwrap();
        assert_eq!(fixed.code(), Code::InvalidArgument);
    }
}
