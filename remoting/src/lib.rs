//! # rmq-remoting
//!
//! The RocketMQ Remoting (TCP) protocol as a consumer client needs it:
//!
//! - [`protocol`]: [`RemotingCommand`], request/response codes, the JSON and ROCKETMQ binary
//!   header serialisations and typed custom headers mapped to `extFields` through serde.
//!   Pure and synchronous.
//! - [`codec`]: the length-prefixed framing as a `tokio_util` codec, 16 MiB frame limit.
//! - [`RemotingClient`]: one lazily opened connection per broker / name-server address,
//!   request/response by opaque, one-way requests, and a [`RequestHandler`] for requests the
//!   broker sends to the client. On plain TCP its readers coalesce their wake-ups: they sleep
//!   until the frame begun, or the responses callers of
//!   [`RemotingClient::invoke_expecting`] expect, are in (`coalesce` module).
//! - [`TlsConfig`]: TLS on every connection (rustls), server certificates verified by default.
//!
//! The Java counterparts are `RemotingCommand`, `NettyEncoder`/`NettyDecoder` and
//! `NettyRemotingClient` in `org.apache.rocketmq.remoting`. Wire facts: REMOTING.md §1–§3.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rmq_remoting::{RemotingClient, RemotingConfig, RemotingCommand, RequestCode};
//!
//! let client = RemotingClient::new(RemotingConfig::default());
//! let mut ext = rmq_remoting::protocol::ExtFields::new();
//! ext.insert("topic", "TopicTest");
//! let mut request = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
//! request.ext_fields = Some(ext);
//! let response = client.invoke("127.0.0.1:9876", request, Duration::from_secs(3)).await?;
//! println!("{:?}: {} body bytes", response.response_code(), response.body.len());
//! # Ok(()) }
//! ```

mod client;
mod coalesce;
pub mod codec;
mod connection;
mod error;
pub mod protocol;
pub mod task;
mod tls;

pub use client::{
    BoxFuture, ConnectHook, InboundContext, RemotingClient, RemotingConfig, RequestHandler,
};
pub use codec::{CodecError, DEFAULT_MAX_FRAME_LEN, RemotingCodec};
pub use error::{CloseReason, RemotingError};
pub use protocol::{
    ExtFields, HeaderError, LanguageCode, RemotingCommand, RequestCode, RequestHeader,
    ResponseCode, SerializeType,
};
pub use tls::{TlsConfig, TlsConfigBuilder, TlsConfigError, TlsFailure};
