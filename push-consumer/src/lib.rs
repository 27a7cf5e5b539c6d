//! # rmq-push-consumer
//!
//! The push consumer (Java `DefaultMQPushConsumer`): subscribe, register a listener, start.
//! rmq pulls every owned queue with long polling, keeps each queue's cache within the flow
//! control limits and one memory budget, runs the listener with bounded concurrency (or
//! one call per queue in order), retries failures through `%RETRY%<group>`, and commits
//! offsets only past consumed messages. In pop mode (`pop_mode(true)`, RocketMQ 5.x) the
//! brokers hand out messages instead, each acknowledged on its own.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rmq_push_consumer::{ConsumeConcurrentlyStatus, PushConsumer, listener_fn};
//!
//! let consumer = PushConsumer::builder("example_group")
//!     .namesrv_addr("127.0.0.1:9876")
//!     .subscribe("TopicTest", "*")
//!     .listener(listener_fn(|msgs, _ctx| async move {
//!         for m in &msgs {
//!             println!("{} {:?}", m.msg_id(), m.body);
//!         }
//!         ConsumeConcurrentlyStatus::ConsumeSuccess
//!     }))
//!     .start()
//!     .await?;
//! // A service stops cleanly on Ctrl-C (SIGINT) and on SIGTERM (docker, systemd, Kubernetes).
//! let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
//! tokio::select! {
//!     _ = tokio::signal::ctrl_c() => {}
//!     _ = term.recv() => {}
//! }
//! let report = consumer.shutdown().await;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! The pieces, in the order a consumer lives: `builder` (the Java knobs, validation), `start`
//! (a running consumer or an error with nothing running), `consumer` (the handle: drop stops
//! it, `shutdown` drains and reports), `core` (what a started consumer owns; the queue table),
//! `pull_loop` (one queue's pull loop and flow control), `pop_loop` (the same in pop mode),
//! `listener_factory`, `rebalance_hook`
//! (queues added and removed), `broker_requests` (offset reset, running info, consume
//! directly), `error`.
//!
//! Metrics (`metrics` crate): `rmq_pulled_total`, `rmq_consumed_total{result=ok|failed}`,
//! `rmq_pull_latency_seconds`, `rmq_consume_latency_seconds`, `rmq_cached_bytes`,
//! `rmq_queue_lag{topic,queue}`, `rmq_flow_control_total`.

mod broker_requests;
mod builder;
mod consumer;
mod core;
mod error;
mod listener_factory;
mod pop_loop;
mod pull_loop;
mod rebalance_hook;
mod start;

pub use builder::{PushConsumerBuilder, PushConsumerConfig};
pub use consumer::PushConsumer;
pub use error::PushConsumerError;
// Everything a user needs, so that this one dependency is enough: messages and the client,
// the listeners and hooks, and what it takes to plug in an own allocation strategy or
// offset store (the traits, their error types, `ReadOffsetType`, `BoxFuture`, and the six
// Java strategies).
pub use rmq_client_core::ShutdownReport;
pub use rmq_client_core::{
    BoxError, ClientConfig, ClientError, ClientInstance, ConsumeFromWhere, Credentials, ErrorKind,
    MessageExt, MessageModel, MessageQueue, Properties,
};
pub use rmq_consume_service::{
    AckMessage, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeMessageContext,
    ConsumeMessageHook, ConsumeOrderlyContext, ConsumeOrderlyStatus, FilterMessageHook,
    IntoConsumeConcurrentlyStatus, MessageListenerConcurrently, MessageListenerOrderly,
    MessageStream, NoopHook, listener_fn, sync_listener,
};
pub use rmq_offset_store::{
    LocalFileOffsetStore, OffsetStore, OffsetStoreError, ReadOffsetType, RemoteBrokerOffsetStore,
};
pub use rmq_rebalance::{
    AllocateError, AllocateMachineRoomNearby, AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle, AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom, AllocateMessageQueueConsistentHash,
    AllocateMessageQueueStrategy, check_allocate_args,
};
pub use rmq_remoting::{BoxFuture, TlsConfig, TlsConfigBuilder, TlsConfigError, TlsFailure};
