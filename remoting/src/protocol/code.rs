//! Request and response codes (`RequestCode.java`, `ResponseCode.java`,
//! `RemotingSysResponseCode.java`), REMOTING.md §3.1–§3.2.

use std::fmt;

macro_rules! codes {
    ($(#[$meta:meta])* $ty:ident { $($(#[$doc:meta])* $name:ident = $value:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(pub i32);

        impl $ty {
            $($(#[$doc])* pub const $name: $ty = $ty($value);)*

            /// The Java constant name of this code, or `None` for a code this crate does not name.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $($ty::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => write!(f, "{}({})", name, self.0),
                    None => write!(f, "{}({})", stringify!($ty), self.0),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl From<i32> for $ty {
            fn from(code: i32) -> Self {
                $ty(code)
            }
        }

        impl From<$ty> for i32 {
            fn from(code: $ty) -> i32 {
                code.0
            }
        }
    };
}

codes! {
    /// A request code (Java `RequestCode`): what a request asks for.
    ///
    /// A newtype rather than an enum, because brokers may send codes this crate does not
    /// know; those are answered with [`ResponseCode::REQUEST_CODE_NOT_SUPPORTED`].
    /// Codes above 32767 (the POP family) cannot be written in a ROCKETMQ binary header
    /// (REMOTING.md §2.3); the codec falls back to JSON for them.
    RequestCode {
        /// SEND_MESSAGE (10), client→broker, V1 header.
        SEND_MESSAGE = 10,
        /// PULL_MESSAGE (11), client→broker.
        PULL_MESSAGE = 11,
        /// QUERY_MESSAGE (12), client→broker.
        QUERY_MESSAGE = 12,
        /// QUERY_CONSUMER_OFFSET (14), client→broker.
        QUERY_CONSUMER_OFFSET = 14,
        /// UPDATE_CONSUMER_OFFSET (15), client→broker, usually one-way.
        UPDATE_CONSUMER_OFFSET = 15,
        /// UPDATE_AND_CREATE_TOPIC (17), admin→broker.
        UPDATE_AND_CREATE_TOPIC = 17,
        /// SEARCH_OFFSET_BY_TIMESTAMP (29), client→broker.
        SEARCH_OFFSET_BY_TIMESTAMP = 29,
        /// GET_MAX_OFFSET (30), client→broker.
        GET_MAX_OFFSET = 30,
        /// GET_MIN_OFFSET (31), client→broker.
        GET_MIN_OFFSET = 31,
        /// GET_EARLIEST_MSG_STORETIME (32), client→broker.
        GET_EARLIEST_MSG_STORETIME = 32,
        /// VIEW_MESSAGE_BY_ID (33), client→broker.
        VIEW_MESSAGE_BY_ID = 33,
        /// HEART_BEAT (34), client→broker.
        HEART_BEAT = 34,
        /// UNREGISTER_CLIENT (35), client→broker.
        UNREGISTER_CLIENT = 35,
        /// CONSUMER_SEND_MSG_BACK (36), client→broker.
        CONSUMER_SEND_MSG_BACK = 36,
        /// GET_CONSUMER_LIST_BY_GROUP (38), client→broker.
        GET_CONSUMER_LIST_BY_GROUP = 38,
        /// CHECK_TRANSACTION_STATE (39), broker→client (producers only).
        CHECK_TRANSACTION_STATE = 39,
        /// NOTIFY_CONSUMER_IDS_CHANGED (40), broker→client, one-way.
        NOTIFY_CONSUMER_IDS_CHANGED = 40,
        /// LOCK_BATCH_MQ (41), client→broker.
        LOCK_BATCH_MQ = 41,
        /// UNLOCK_BATCH_MQ (42), client→broker.
        UNLOCK_BATCH_MQ = 42,
        /// CHECK_CLIENT_CONFIG (46), client→broker.
        CHECK_CLIENT_CONFIG = 46,
        /// GET_ROUTEINFO_BY_TOPIC (105), client→name server.
        GET_ROUTEINFO_BY_TOPIC = 105,
        /// GET_BROKER_CLUSTER_INFO (106), client→name server.
        GET_BROKER_CLUSTER_INFO = 106,
        /// GET_CONSUMER_CONNECTION_LIST (203), admin→broker.
        GET_CONSUMER_CONNECTION_LIST = 203,
        /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206), admin→name server.
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
        /// RESET_CONSUMER_CLIENT_OFFSET (220), broker→client, one-way.
        RESET_CONSUMER_CLIENT_OFFSET = 220,
        /// GET_CONSUMER_STATUS_FROM_CLIENT (221), broker→client.
        GET_CONSUMER_STATUS_FROM_CLIENT = 221,
        /// INVOKE_BROKER_TO_RESET_OFFSET (222), admin→broker.
        INVOKE_BROKER_TO_RESET_OFFSET = 222,
        /// GET_CONSUMER_RUNNING_INFO (307), broker→client (forwarded admin request).
        GET_CONSUMER_RUNNING_INFO = 307,
        /// CONSUME_MESSAGE_DIRECTLY (309), broker→client (forwarded admin request).
        CONSUME_MESSAGE_DIRECTLY = 309,
        /// SEND_MESSAGE_V2 (310), client→broker, one-letter header keys.
        SEND_MESSAGE_V2 = 310,
        /// SEND_BATCH_MESSAGE (320), client→broker.
        SEND_BATCH_MESSAGE = 320,
        /// PUSH_REPLY_MESSAGE_TO_CLIENT (326), broker→client (request/reply producers).
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326,
        /// LITE_PULL_MESSAGE (361), client→broker.
        LITE_PULL_MESSAGE = 361,
        /// QUERY_ASSIGNMENT (400), client→broker.
        QUERY_ASSIGNMENT = 400,
        /// SET_MESSAGE_REQUEST_MODE (401), client→broker.
        SET_MESSAGE_REQUEST_MODE = 401,
        /// UPDATE_AND_CREATE_STATIC_TOPIC (513), admin→broker: a static (logical-queue)
        /// topic with its `TopicQueueMappingDetail` body (REMOTING-5X §2.2).
        UPDATE_AND_CREATE_STATIC_TOPIC = 513,
        /// POP_MESSAGE (200050), client→broker; JSON headers only.
        POP_MESSAGE = 200050,
        /// ACK_MESSAGE (200051), client→broker; JSON headers only.
        ACK_MESSAGE = 200051,
        /// CHANGE_MESSAGE_INVISIBLETIME (200053), client→broker; JSON headers only.
        CHANGE_MESSAGE_INVISIBLETIME = 200053,
        /// BATCH_ACK_MESSAGE (200151), client→broker; a JSON body, no custom header.
        BATCH_ACK_MESSAGE = 200151,
    }
}

codes! {
    /// A response code (Java `ResponseCode` / `RemotingSysResponseCode`): how a request ended.
    ResponseCode {
        /// SUCCESS (0).
        SUCCESS = 0,
        /// SYSTEM_ERROR (1).
        SYSTEM_ERROR = 1,
        /// SYSTEM_BUSY (2): broker back-pressure, retry later.
        SYSTEM_BUSY = 2,
        /// REQUEST_CODE_NOT_SUPPORTED (3).
        REQUEST_CODE_NOT_SUPPORTED = 3,
        /// TRANSACTION_FAILED (4).
        TRANSACTION_FAILED = 4,
        /// FLUSH_DISK_TIMEOUT (10): the message was stored, flush timed out.
        FLUSH_DISK_TIMEOUT = 10,
        /// SLAVE_NOT_AVAILABLE (11): stored on the master only.
        SLAVE_NOT_AVAILABLE = 11,
        /// FLUSH_SLAVE_TIMEOUT (12): stored, slave sync timed out.
        FLUSH_SLAVE_TIMEOUT = 12,
        /// MESSAGE_ILLEGAL (13).
        MESSAGE_ILLEGAL = 13,
        /// SERVICE_NOT_AVAILABLE (14).
        SERVICE_NOT_AVAILABLE = 14,
        /// VERSION_NOT_SUPPORTED (15).
        VERSION_NOT_SUPPORTED = 15,
        /// NO_PERMISSION (16).
        NO_PERMISSION = 16,
        /// TOPIC_NOT_EXIST (17).
        TOPIC_NOT_EXIST = 17,
        /// TOPIC_EXIST_ALREADY (18).
        TOPIC_EXIST_ALREADY = 18,
        /// PULL_NOT_FOUND (19) → PullStatus NO_NEW_MSG.
        PULL_NOT_FOUND = 19,
        /// PULL_RETRY_IMMEDIATELY (20) → PullStatus NO_MATCHED_MSG.
        PULL_RETRY_IMMEDIATELY = 20,
        /// PULL_OFFSET_MOVED (21) → PullStatus OFFSET_ILLEGAL.
        PULL_OFFSET_MOVED = 21,
        /// QUERY_NOT_FOUND (22): the group has no stored offset.
        QUERY_NOT_FOUND = 22,
        /// SUBSCRIPTION_PARSE_FAILED (23).
        SUBSCRIPTION_PARSE_FAILED = 23,
        /// SUBSCRIPTION_NOT_EXIST (24).
        SUBSCRIPTION_NOT_EXIST = 24,
        /// SUBSCRIPTION_NOT_LATEST (25).
        SUBSCRIPTION_NOT_LATEST = 25,
        /// SUBSCRIPTION_GROUP_NOT_EXIST (26).
        SUBSCRIPTION_GROUP_NOT_EXIST = 26,
        /// FILTER_DATA_NOT_EXIST (27).
        FILTER_DATA_NOT_EXIST = 27,
        /// FILTER_DATA_NOT_LATEST (28).
        FILTER_DATA_NOT_LATEST = 28,
        /// INVALID_PARAMETER (29).
        INVALID_PARAMETER = 29,
        /// CONSUMER_NOT_ONLINE (206).
        CONSUMER_NOT_ONLINE = 206,
        /// CONSUME_MSG_TIMEOUT (207).
        CONSUME_MSG_TIMEOUT = 207,
        /// NO_MESSAGE (208), POP: an ack or invisible-time change for an offset the
        /// queue no longer (or not yet) holds.
        NO_MESSAGE = 208,
        /// POLLING_FULL (209), POP: too many pops parked at the broker.
        POLLING_FULL = 209,
        /// POLLING_TIMEOUT (210), POP: nothing found within the pop's `pollTime`.
        POLLING_TIMEOUT = 210,
        /// FLOW_CONTROL (215): broker flow control, retry after 20 ms.
        FLOW_CONTROL = 215,
        /// NOT_LEADER_FOR_QUEUE (501).
        NOT_LEADER_FOR_QUEUE = 501,
        /// GO_AWAY (1500): a shutting-down 5.3.2+ server; reconnect elsewhere.
        GO_AWAY = 1500,
    }
}

impl ResponseCode {
    /// `true` for [`ResponseCode::SUCCESS`].
    pub fn is_success(self) -> bool {
        self == ResponseCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_reference() {
        assert_eq!(RequestCode::PULL_MESSAGE.0, 11);
        assert_eq!(RequestCode::GET_ROUTEINFO_BY_TOPIC.0, 105);
        assert_eq!(RequestCode::CONSUME_MESSAGE_DIRECTLY.0, 309);
        assert_eq!(RequestCode::POP_MESSAGE.0, 200050);
        assert_eq!(ResponseCode::PULL_OFFSET_MOVED.0, 21);
        assert_eq!(ResponseCode::FLOW_CONTROL.0, 215);
        assert_eq!(format!("{:?}", RequestCode(11)), "PULL_MESSAGE(11)");
        assert_eq!(format!("{:?}", RequestCode(9999)), "RequestCode(9999)");
        assert!(ResponseCode(0).is_success());
        assert!(!ResponseCode::SYSTEM_ERROR.is_success());
    }
}
