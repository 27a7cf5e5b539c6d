//! The pure protocol layer: [`RemotingCommand`], codes, header serialisations and the
//! typed-header bridge. No I/O here.

pub mod code;
pub mod ext;
mod ext_ser;
mod header;

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use code::{RequestCode, ResponseCode};
pub use ext::{EmptyHeader, ExtFields, HeaderError, RequestHeader};
pub use header::{HeaderDecodeError, decode_header, encode_header};

/// Bit 0 of `flag`: the command is a response (`RemotingCommand.RPC_TYPE`).
pub const FLAG_RESPONSE: i32 = 0x1;
/// Bit 1 of `flag`: a one-way request that must not be answered (`RemotingCommand.RPC_ONEWAY`).
pub const FLAG_ONEWAY: i32 = 0x2;

/// `MQVersion.Version.V4_9_4` ordinal (401): the lowest version that gets standard route JSON.
pub const VERSION_V4_9_4: i32 = 401;
/// `MQVersion.Version.V5_3_1` ordinal (475): the highest version a client that does not
/// handle `GO_AWAY` (1500) may send.
///
/// REMOTING.md §2.6: anything below 401 silently disables reset-offset push (needs ≥ 28),
/// running-info forwarding (≥ 62), broker-side `maxReconsumeTimes` (≥ 121) and standard
/// route JSON (≥ 401); anything above 475 opts into `GO_AWAY` handling.
pub const VERSION_V5_3_1: i32 = 475;
/// `MQVersion.Version.V5_3_2` ordinal (476): the default `version` rmq sends. It asks for
/// everything a consumer needs and opts into `GO_AWAY` (REMOTING-5X §3): a 5.3.2+ server
/// shutting down gracefully answers such requests 1500 without processing them instead
/// of serving them for its last 30 s and then dropping the connection, and the client
/// retries them on a new connection (see `RemotingConfig::reconnect_on_go_away`).
pub const VERSION_V5_3_2: i32 = 476;

/// How the header of a frame is serialized (bits 31..24 of the header word, REMOTING.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// 0: fastjson text, the Java default; works for every request code.
    #[default]
    Json,
    /// 1: the compact binary header of `RocketMQSerializable` (REMOTING.md §2.3).
    RocketMq,
}

impl SerializeType {
    /// The byte written into the header word.
    pub fn as_u8(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The type for a header word's top byte, `None` if unknown.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// The sender's language (Java `LanguageCode`, REMOTING.md §2.5), a byte on the binary wire
/// and the constant name in JSON.
///
/// A newtype so that a value this crate does not know (a newer broker's) survives decoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LanguageCode(pub u8);

const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

impl LanguageCode {
    /// JAVA (0).
    pub const JAVA: LanguageCode = LanguageCode(0);
    /// CPP (1).
    pub const CPP: LanguageCode = LanguageCode(1);
    /// GO (9).
    pub const GO: LanguageCode = LanguageCode(9);
    /// OTHER (7): known to every broker version.
    pub const OTHER: LanguageCode = LanguageCode(7);
    /// RUST (12): only brokers from 4.9.4 on know it.
    pub const RUST: LanguageCode = LanguageCode(12);

    /// The default language rmq sends: [`LanguageCode::OTHER`].
    ///
    /// Why not `RUST`: brokers older than 4.9.4 have no `RUST` constant; a binary header then
    /// decodes to a null language and a JSON header to an unknown enum (REMOTING.md §2.5),
    /// which breaks the channel bookkeeping of the heartbeat. `OTHER` exists in every
    /// release and does not pretend to be Java. Set `RUST` explicitly for 4.9.4+ clusters.
    pub const DEFAULT: LanguageCode = LanguageCode::OTHER;

    /// The Java constant name, or `None` for an unknown value.
    pub fn name(self) -> Option<&'static str> {
        LANGUAGE_NAMES.get(usize::from(self.0)).copied()
    }

    /// The code for a Java constant name.
    pub fn from_name(name: &str) -> Option<Self> {
        LANGUAGE_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| LanguageCode(i as u8))
    }
}

impl Default for LanguageCode {
    fn default() -> Self {
        LanguageCode::DEFAULT
    }
}

impl fmt::Debug for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "LanguageCode({})", self.0),
        }
    }
}

/// One Remoting frame's content (Java `RemotingCommand`): a request, a response or a
/// one-way request, with its custom header flattened into `ext_fields` and an opaque body.
///
/// The body is a [`Bytes`] slice of the received frame: decoding never copies it.
#[derive(Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code in requests ([`RequestCode`]), response code in responses ([`ResponseCode`]).
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's `MQVersion` ordinal (REMOTING.md §2.6).
    pub version: i32,
    /// Correlation id: a response carries its request's opaque.
    pub opaque: i32,
    /// Bit flags, see [`FLAG_RESPONSE`] and [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Error text in responses; pull responses carry the store status name.
    pub remark: Option<String>,
    /// The custom header; `None` is distinct from an empty map only in JSON (`extFields` absent vs `{}`).
    pub ext_fields: Option<ExtFields>,
    /// The body, empty when absent.
    pub body: Bytes,
    /// How this command's header is (to be) serialized.
    pub serialize_type: SerializeType,
}

impl fmt::Debug for RemotingCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RemotingCommand");
        if self.is_response() {
            d.field("code", &ResponseCode(self.code));
        } else {
            d.field("code", &RequestCode(self.code));
        }
        d.field("language", &self.language)
            .field("version", &self.version)
            .field("opaque", &self.opaque)
            .field("flag", &self.flag)
            .field("remark", &self.remark)
            .field("ext_fields", &self.ext_fields)
            .field("body_len", &self.body.len())
            .field("serialize_type", &self.serialize_type)
            .finish()
    }
}

impl RemotingCommand {
    fn new(code: i32, flag: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::DEFAULT,
            version: VERSION_V5_3_2,
            opaque: 0,
            flag,
            remark: None,
            ext_fields: None,
            body: Bytes::new(),
            serialize_type: SerializeType::Json,
        }
    }

    /// A request with no header (Java `createRequestCommand(code, null)`); ext fields `None`.
    pub fn request(code: RequestCode) -> Self {
        Self::new(code.0, 0)
    }

    /// A request carrying a typed header.
    ///
    /// # Errors
    /// [`HeaderError::NotAFlatStruct`] when the header is not a flat struct of scalars.
    pub fn request_with_header<H: RequestHeader>(header: &H) -> Result<Self, HeaderError> {
        let mut cmd = Self::new(H::CODE.0, 0);
        cmd.ext_fields = Some(header.to_ext_fields()?);
        Ok(cmd)
    }

    /// A response with the given code and remark (Java `createResponseCommand`); the
    /// opaque is set by whoever sends it back.
    pub fn response(code: ResponseCode, remark: impl Into<Option<String>>) -> Self {
        let mut cmd = Self::new(code.0, FLAG_RESPONSE);
        cmd.remark = remark.into();
        cmd
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the header serialisation.
    pub fn with_serialize_type(mut self, serialize_type: SerializeType) -> Self {
        self.serialize_type = serialize_type;
        self
    }

    /// Marks the command one-way (Java `markOnewayRPC`).
    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// `true` when the response bit of `flag` is set.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// `true` when the one-way bit of `flag` is set.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// The code as a request code.
    pub fn request_code(&self) -> RequestCode {
        RequestCode(self.code)
    }

    /// The code as a response code.
    pub fn response_code(&self) -> ResponseCode {
        ResponseCode(self.code)
    }

    /// The value of ext field `key`.
    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.as_ref()?.get(key)
    }

    /// Decodes the ext fields into a typed header.
    ///
    /// # Errors
    /// [`HeaderError::Decode`] naming a field that is missing or does not parse. A command
    /// without ext fields decodes as an empty map (so all-optional headers succeed).
    pub fn decode_header<H: DeserializeOwned>(&self) -> Result<H, HeaderError> {
        match &self.ext_fields {
            Some(ext) => ext.to_header(),
            None => ExtFields::new().to_header(),
        }
    }

    /// Replaces the ext fields with a typed header.
    ///
    /// # Errors
    /// [`HeaderError::NotAFlatStruct`] when the header is not a flat struct of scalars.
    pub fn set_header<H: Serialize>(&mut self, header: &H) -> Result<(), HeaderError> {
        self.ext_fields = Some(ExtFields::from_header(header)?);
        Ok(())
    }
}
