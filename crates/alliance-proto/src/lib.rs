//! The public gRPC contract, generated from `proto/alliance/v1`, and its conversion to and from
//! the domain. Protobuf types never reach the domain crate: they are converted here, at the edge.

pub mod convert;

/// Generated code of package `alliance.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("alliance.v1");
}

/// The encoded file descriptor set of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("alliance_descriptor");
