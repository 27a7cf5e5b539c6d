//! Client configuration and client id (Java `ClientConfig`, REMOTING.md §8).

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmq_remoting::{RemotingConfig, TlsConfig};

/// `instanceName` default (Java `rocketmq.client.name`, else `"DEFAULT"`).
pub const DEFAULT_INSTANCE_NAME: &str = "DEFAULT";

/// ACL 1.0 credentials (Java `SessionCredentials`). `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key, sent as ext field `AccessKey`.
    pub access_key: String,
    /// Secret key: signs requests, never sent.
    pub secret_key: String,
    /// Optional STS token, sent as ext field `SecurityToken`.
    pub security_token: Option<String>,
}

impl Credentials {
    /// Credentials without a security token.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Settings shared by every consumer and producer of one client instance (Java `ClientConfig`).
///
/// Start from [`ClientConfig::default`] and use the by-value setters. Every default is the
/// Java one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Name-server addresses, `host:port`. Default: `NAMESRV_ADDR` split on `;` (Java
    /// `namesrvAddr`, system property `rocketmq.namesrv.addr` or env `NAMESRV_ADDR`).
    pub namesrv_addrs: Vec<String>,
    /// Client IP in the client id. Default: the first non-loopback IPv4 address outside
    /// 192.168/16, else any non-loopback address, else 127.0.0.1 (Java `clientIP`).
    pub client_ip: String,
    /// Instance name in the client id. Default `"DEFAULT"` (Java `instanceName`).
    pub instance_name: String,
    /// Unit name appended to the client id when set (Java `unitName`).
    pub unit_name: Option<String>,
    /// Namespace wrapped around topic and group names, `namespace%name` (Java `namespace`).
    pub namespace: Option<String>,
    /// Route refresh period. Default 30 s (Java `pollNameServerInterval`).
    pub poll_name_server_interval: Duration,
    /// Heartbeat period. Default 30 s (Java `heartbeatBrokerInterval`).
    pub heartbeat_broker_interval: Duration,
    /// Offset persist period. Default 5 s (Java `persistConsumerOffsetInterval`).
    pub persist_consumer_offset_interval: Duration,
    /// Pull back-off after an error. Default 1 s (Java `pullTimeDelayMillsWhenException`).
    pub pull_time_delay_when_exception: Duration,
    /// Timeout of ordinary client calls (heartbeat, consumer list, route). Default 3 s
    /// (Java `mqClientApiTimeout`).
    pub mq_client_api_timeout: Duration,
    /// ACL 1.0 credentials; requests are signed when set.
    pub credentials: Option<Credentials>,
    /// Transport settings (language, version, frame limit, connect timeout, TLS).
    pub remoting: RemotingConfig,
    /// Broker address mapping: a broker address as the name server advertises it
    /// (`host:port`, exactly as in the route) → the address to dial instead. Empty by
    /// default. For clients outside the network the brokers live in: brokers in Docker,
    /// Kubernetes or behind NAT register their internal addresses (`172.17.0.3:10911`),
    /// which an outside client cannot reach; map each to its published address
    /// (`broker-a.example.com:30911`). Applied to every route as it arrives, so heartbeats,
    /// pulls, offsets and locks all dial the mapped address; unmapped addresses are dialed
    /// as advertised. Java has no such setting (users patch `brokerIP1` on the broker).
    pub broker_addr_map: std::collections::BTreeMap<String, String>,
    /// Heartbeat V2 (brokers ≥ 5.1.3; Java `useHeartbeatV2`, system property
    /// `com.rocketmq.heartbeat.v2`). Default false, as in Java. When on, every heartbeat
    /// carries a fingerprint of the subscriptions, and a broker that acknowledged the
    /// current fingerprint gets the heartbeat without subscriptions (`withoutSub`) until
    /// something changes: a new fingerprint, a new connection, or a broker answering
    /// `IS_SUB_CHANGE=true`. Older brokers, which do not answer `IS_SUPPORT_HEART_BEAT_V2`,
    /// always get full heartbeats. A group whose members have different subscriptions
    /// (or mixes V1 and V2 clients) gains nothing: the broker keeps one fingerprint per group.
    pub use_heartbeat_v2: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addrs: std::env::var("NAMESRV_ADDR")
                .map(|v| split_addrs(&v))
                .unwrap_or_default(),
            client_ip: local_ip(),
            instance_name: DEFAULT_INSTANCE_NAME.to_owned(),
            unit_name: None,
            namespace: None,
            poll_name_server_interval: Duration::from_millis(30_000),
            heartbeat_broker_interval: Duration::from_millis(30_000),
            persist_consumer_offset_interval: Duration::from_millis(5_000),
            pull_time_delay_when_exception: Duration::from_millis(1_000),
            mq_client_api_timeout: Duration::from_millis(3_000),
            credentials: None,
            remoting: RemotingConfig::default(),
            broker_addr_map: Default::default(),
            use_heartbeat_v2: false,
        }
    }
}

fn split_addrs(v: &str) -> Vec<String> {
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ClientConfig {
    /// The address to dial for a broker advertised at `advertised`: its
    /// [`ClientConfig::broker_addr_map`] entry, or itself.
    pub fn dial_addr<'a>(&'a self, advertised: &'a str) -> &'a str {
        self.broker_addr_map
            .get(advertised)
            .map_or(advertised, String::as_str)
    }

    /// Dials `dial` wherever a route advertises the broker address `advertised` (see
    /// [`ClientConfig::broker_addr_map`]).
    pub fn map_broker_addr(
        mut self,
        advertised: impl Into<String>,
        dial: impl Into<String>,
    ) -> Self {
        self.broker_addr_map.insert(advertised.into(), dial.into());
        self
    }

    /// Sets the name servers from `a:9876;b:9876`.
    pub fn namesrv_addr(mut self, addrs: &str) -> Self {
        self.namesrv_addrs = split_addrs(addrs);
        self
    }
    /// Sets [`ClientConfig::client_ip`].
    pub fn client_ip(mut self, ip: impl Into<String>) -> Self {
        self.client_ip = ip.into();
        self
    }
    /// Sets [`ClientConfig::instance_name`].
    pub fn instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance_name = name.into();
        self
    }
    /// Sets [`ClientConfig::unit_name`].
    pub fn unit_name(mut self, name: impl Into<String>) -> Self {
        self.unit_name = Some(name.into());
        self
    }
    /// Sets [`ClientConfig::namespace`].
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into()).filter(|s: &String| !s.is_empty());
        self
    }
    /// Sets [`ClientConfig::poll_name_server_interval`].
    pub fn poll_name_server_interval(mut self, d: Duration) -> Self {
        self.poll_name_server_interval = d;
        self
    }
    /// Sets [`ClientConfig::heartbeat_broker_interval`].
    pub fn heartbeat_broker_interval(mut self, d: Duration) -> Self {
        self.heartbeat_broker_interval = d;
        self
    }
    /// Sets [`ClientConfig::persist_consumer_offset_interval`].
    pub fn persist_consumer_offset_interval(mut self, d: Duration) -> Self {
        self.persist_consumer_offset_interval = d;
        self
    }
    /// Sets [`ClientConfig::pull_time_delay_when_exception`].
    pub fn pull_time_delay_when_exception(mut self, d: Duration) -> Self {
        self.pull_time_delay_when_exception = d;
        self
    }
    /// Sets [`ClientConfig::mq_client_api_timeout`].
    pub fn mq_client_api_timeout(mut self, d: Duration) -> Self {
        self.mq_client_api_timeout = d;
        self
    }
    /// Sets [`ClientConfig::credentials`].
    pub fn credentials(mut self, c: Credentials) -> Self {
        self.credentials = Some(c);
        self
    }
    /// Sets [`ClientConfig::remoting`].
    pub fn remoting(mut self, r: RemotingConfig) -> Self {
        self.remoting = r;
        self
    }
    /// TLS on every connection (name servers and brokers), Java `setUseTLS(true)` plus the
    /// `tls.client.*` properties: sets [`RemotingConfig::tls`]. Unlike Java, the server
    /// certificate is verified by default (see [`TlsConfig`]):
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rmq_client_core::ClientConfig;
    /// use rmq_remoting::TlsConfig;
    ///
    /// let tls = TlsConfig::builder()
    ///     .ca_file("/etc/rocketmq/ca.pem")
    ///     .client_cert("/etc/rocketmq/client.pem", "/etc/rocketmq/client.key")
    ///     .build()?;
    /// let config = ClientConfig::default().namesrv_addr("ns.example.com:9876").tls(tls);
    /// # let _ = config; Ok(()) }
    /// ```
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.remoting.tls = Some(tls);
        self
    }

    /// Sets [`ClientConfig::use_heartbeat_v2`].
    pub fn use_heartbeat_v2(mut self, on: bool) -> Self {
        self.use_heartbeat_v2 = on;
        self
    }

    /// The namespace, empty when unset.
    pub fn namespace_str(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// Wraps a topic or group name in the namespace (Java `ClientConfig.withNamespace`).
    pub fn with_namespace(&self, resource: &str) -> String {
        crate::namespace::wrap(self.namespace_str(), resource)
    }

    /// Strips the namespace from a topic or group name (Java `ClientConfig.withoutNamespace`).
    pub fn without_namespace(&self, resource: &str) -> String {
        crate::namespace::unwrap(self.namespace_str(), resource)
    }

    /// Java `changeInstanceNameToPID`, made unique: an instance name of `"DEFAULT"` becomes
    /// `<pid>#<64-bit random>`.
    ///
    /// Java uses `<pid>#<System.nanoTime()>`; before that (apache/rocketmq#1547) only the
    /// PID, so two containers sharing an IP (host networking, NAT) and both running as
    /// PID 1 got the same client id and split queues wrongly. A nanosecond clock can still
    /// repeat across hosts; rmq takes 64 bits seeded by the OS random source per process
    /// and mixed with a per-process counter, so ids differ across processes, hosts and
    /// instances within one process. Call it in clustering mode only: broadcasting keeps
    /// `DEFAULT` so its local offset file path stays the same across restarts.
    pub fn change_instance_name_to_unique(&mut self) {
        if self.instance_name == DEFAULT_INSTANCE_NAME {
            self.instance_name = format!("{}#{}", std::process::id(), unique_u64());
        }
    }

    /// The first setting (by its Java name) in which `other` differs from `self` among
    /// those a shared client instance applies to every user: name servers, namespace,
    /// credentials, TLS and the instance's periods and timeouts. `None` when they agree.
    pub fn instance_setting_differing_from(&self, other: &ClientConfig) -> Option<&'static str> {
        let checks: [(&'static str, bool); 11] = [
            ("useTLS", self.remoting.tls == other.remoting.tls),
            (
                "useHeartbeatV2",
                self.use_heartbeat_v2 == other.use_heartbeat_v2,
            ),
            (
                "brokerAddrMap",
                self.broker_addr_map == other.broker_addr_map,
            ),
            ("namesrvAddr", self.namesrv_addrs == other.namesrv_addrs),
            ("namespace", self.namespace == other.namespace),
            ("credentials", self.credentials == other.credentials),
            (
                "pollNameServerInterval",
                self.poll_name_server_interval == other.poll_name_server_interval,
            ),
            (
                "heartbeatBrokerInterval",
                self.heartbeat_broker_interval == other.heartbeat_broker_interval,
            ),
            (
                "persistConsumerOffsetInterval",
                self.persist_consumer_offset_interval == other.persist_consumer_offset_interval,
            ),
            (
                "pullTimeDelayMillsWhenException",
                self.pull_time_delay_when_exception == other.pull_time_delay_when_exception,
            ),
            (
                "mqClientApiTimeout",
                self.mq_client_api_timeout == other.mq_client_api_timeout,
            ),
        ];
        checks
            .into_iter()
            .find(|(_, same)| !same)
            .map(|(name, _)| name)
    }

    /// The client id `clientIP@instanceName[@unitName]` (Java `buildMQClientId`).
    pub fn client_id(&self) -> String {
        let mut id = format!("{}@{}", self.client_ip, self.instance_name);
        if let Some(unit) = self.unit_name.as_deref().filter(|u| !u.trim().is_empty()) {
            id.push('@');
            id.push_str(unit);
        }
        id
    }
}

/// A 64-bit value that differs between calls and between processes (client ids, the
/// producer's first queue).
pub(crate) fn unique_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS random source once per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Java `NetworkUtil.getLocalAddress`: the first non-loopback IPv4 address not in
/// 192.168/16; else the last other non-loopback IPv4; else an IPv6 one in brackets; else
/// 127.0.0.1.
pub fn local_ip() -> String {
    let addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|v| {
            v.into_iter()
                .map(|i| i.ip())
                .filter(|ip| !ip.is_loopback())
                .collect()
        })
        .unwrap_or_default();
    let v4: Vec<String> = addrs
        .iter()
        .filter(|ip| ip.is_ipv4())
        .map(ToString::to_string)
        .collect();
    if let Some(ip) = v4
        .iter()
        .find(|ip| !ip.starts_with("192.168") && !ip.starts_with("0."))
    {
        return ip.clone();
    }
    if let Some(ip) = v4.last() {
        return ip.clone();
    }
    if let Some(ip) = addrs.iter().find(|ip| ip.is_ipv6()) {
        return format!("[{ip}]");
    }
    "127.0.0.1".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_shapes() {
        let c = ClientConfig::default()
            .client_ip("10.0.0.5")
            .instance_name("x");
        assert_eq!(c.client_id(), "10.0.0.5@x");
        let c = c.unit_name("u");
        assert_eq!(c.client_id(), "10.0.0.5@x@u");
    }

    #[test]
    fn unique_instance_names_differ_and_keep_the_pid() {
        let mut a = ClientConfig::default().client_ip("10.0.0.5");
        let mut b = a.clone();
        a.change_instance_name_to_unique();
        b.change_instance_name_to_unique();
        assert_ne!(a.client_id(), b.client_id());
        assert!(
            a.instance_name
                .starts_with(&format!("{}#", std::process::id()))
        );
        let mut named = ClientConfig::default().instance_name("mine");
        named.change_instance_name_to_unique();
        assert_eq!(named.instance_name, "mine");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let c = ClientConfig::default().credentials(Credentials::new("ak", "very-secret"));
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
