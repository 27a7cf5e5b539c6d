//! # rmq-push-consumer
//!
//! The push consumer (Java `DefaultMQPushConsumer`), assembled from the crates below it.
//!
//! Status: not written yet (issue 5). This crate currently exports nothing.
