//! Pop consumption (RocketMQ 5.x, REMOTING-5X §1): the broker hands out messages, each
//! invisible to other pops for a while, and each acknowledged on its own; the client keeps
//! no offsets.
//!
//! - The wire pieces: the receipt handle ([`ReceiptHandle`], Java `ExtraInfoUtil`), the
//!   pop-retry topic names (Java `KeyBuilder`), the offset-info strings, the
//!   BATCH_ACK_MESSAGE body in the one form both the Java and the rocketmq-rust 1.0
//!   brokers accept. Checked against `vectors/pop.json`.
//! - The request headers and the [`ClientApi`](crate::ClientApi) functions (POP_MESSAGE,
//!   ACK_MESSAGE, BATCH_ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME,
//!   SET_MESSAGE_REQUEST_MODE).
//! - [`PopKernel`]: one group's pops, acks and invisible-time changes; [`PopReceipt`]: a
//!   popped message's handle, shared by its clones.

mod header;
mod kernel;
mod receipt;
mod requests;
mod wire;

pub use header::{
    AckMessageRequestHeader, BatchAckMessageRequestHeader, ChangeInvisibleTimeRequestHeader,
    ChangeInvisibleTimeResponseHeader, ConsumeInitMode, MessageRequestMode,
    PopMessageRequestHeader, PopMessageResponseHeader, SetMessageRequestModeRequestBody,
    SetMessageRequestModeRequestHeader,
};
pub use kernel::{
    POP_DELAY_LEVEL_SECS, PROPERTY_POP_CK, PopKernel, PopResult, PopSpec, pop_retry_delay,
};
pub use receipt::PopReceipt;
pub use requests::{PopStatus, RawPopResult};
pub use wire::*;
