//! Route JSON from a name server (fastjson's non-standard output included, REMOTING.md §4)
//! on arbitrary bytes: parsed or refused with an error, never a panic; a parsed route's
//! queue lists can be computed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmq_client_core::TopicRouteData;

fuzz_target!(|data: &[u8]| {
    if let Ok(route) = TopicRouteData::parse(data) {
        let _ = route.subscribe_queues("T");
        let _ = route.publish_queues("T");
    }
});
