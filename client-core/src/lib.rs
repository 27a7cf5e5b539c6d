//! # rmq-client-core
//!
//! Everything a consumer needs to talk to a RocketMQ cluster below any consume logic:
//! client config and id, the name-server route cache, heartbeats, `MessageExt` decoding and
//! the typed broker / name-server API (Java `MQClientInstance`, `MQClientAPIImpl`).
//!
//! Status: not written yet (issue 3). This crate currently exports nothing.
