//! [`LocalFileOffsetStore`] (Java `LocalFileOffsetStore`): broadcasting consumers keep
//! their offsets in `~/.rocketmq_offsets/<clientId>/<group>/offsets.json`.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmq_client_core::MessageQueue;
use rmq_client_core::fastjson::parse_mq_map_field;
use rmq_remoting::BoxFuture;

use crate::{OffsetStore, OffsetStoreError, OffsetTable, ReadOffsetType};

/// Parses an offsets file as Java's fastjson reader does: the pretty or compact fastjson
/// form with MessageQueue objects as keys, keys given as strings holding the MessageQueue
/// JSON, offsets as numbers or quoted numbers; `{}` and `{"offsetTable":{}}` are empty.
/// Offsets are read as exact integers (2^53 + 1 survives).
///
/// # Errors
/// A [`rmq_client_core::fastjson::FastjsonError`] for anything else (Java rejects an
/// array-shaped table too).
pub fn parse_offsets_file(
    text: &str,
) -> Result<HashMap<MessageQueue, i64>, rmq_client_core::fastjson::FastjsonError> {
    let raw: HashMap<MessageQueue, serde_json::Value> = parse_mq_map_field(text, "offsetTable")?;
    let mut out = HashMap::with_capacity(raw.len());
    for (mq, v) in raw {
        let offset = match &v {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match offset {
            Some(o) => {
                out.insert(mq, o);
            }
            None => {
                tracing::warn!(?mq, value = %v, "offsets file entry is not an integer; ignored")
            }
        }
    }
    Ok(out)
}

/// Formats entries exactly as Java's `OffsetSerializeWrapper.toJson(true)` lays out the
/// file (fastjson pretty print: tabs, MessageQueue objects as keys, no trailing newline),
/// in the order given.
pub fn format_offsets_file(entries: &[(MessageQueue, i64)]) -> String {
    let mut s = String::from("{\n\t\"offsetTable\":{");
    for (i, (mq, offset)) in entries.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\n\t\t\t\"brokerName\":");
        s.push_str(&serde_json::to_string(&mq.broker_name).expect("string"));
        s.push_str(",\n\t\t\t\"queueId\":");
        s.push_str(&mq.queue_id.to_string());
        s.push_str(",\n\t\t\t\"topic\":");
        s.push_str(&serde_json::to_string(&mq.topic).expect("string"));
        s.push_str("\n\t\t}:");
        s.push_str(&offset.to_string());
    }
    if !entries.is_empty() {
        s.push_str("\n\t");
    }
    s.push_str("}\n}");
    s
}

/// Broadcasting-mode offsets in a local file, in the Java client's path and layout, so a
/// Java client with the same client id and group reads them and vice versa.
///
/// Writes are atomic: the table goes to `offsets.json.tmp` (flushed and synced), the
/// previous file is copied to `offsets.json.bak`, then the temp file is renamed over
/// `offsets.json`. A crash at any point leaves `offsets.json` or `offsets.json.bak`
/// readable; [`OffsetStore::load`] falls back to the `.bak` file as Java does.
#[derive(Debug, Clone)]
pub struct LocalFileOffsetStore {
    path: PathBuf,
    table: Arc<OffsetTable>,
    write_lock: Arc<Mutex<()>>,
}

impl LocalFileOffsetStore {
    /// The store of `group` for `client_id` under `dir`, or under Java's default
    /// `~/.rocketmq_offsets` (system property `rocketmq.client.localOffsetStoreDir`) when
    /// `dir` is `None`.
    pub fn new(dir: Option<&Path>, client_id: &str, group: &str) -> Self {
        let base = dir.map(Path::to_path_buf).unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".rocketmq_offsets")
        });
        LocalFileOffsetStore {
            path: base.join(client_id).join(group).join("offsets.json"),
            table: Arc::new(OffsetTable::default()),
            write_lock: Arc::new(Mutex::new(())),
        }
    }

    /// The offsets file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bak_path(&self) -> PathBuf {
        with_suffix(&self.path, ".bak")
    }

    fn read_file(path: &Path) -> Result<Option<HashMap<MessageQueue, i64>>, OffsetStoreError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OffsetStoreError::Io {
                    path: path.display().to_string(),
                    op: "read",
                    source,
                });
            }
        };
        parse_offsets_file(&text)
            .map(Some)
            .map_err(|source| OffsetStoreError::Parse {
                path: path.display().to_string(),
                source: Box::new(source),
            })
    }

    /// Reads `offsets.json`, falling back to `offsets.json.bak` when the main file is
    /// missing or unreadable (Java `readLocalOffset` / `readLocalOffsetBak`).
    fn read_with_fallback(&self) -> Result<Option<HashMap<MessageQueue, i64>>, OffsetStoreError> {
        match Self::read_file(&self.path) {
            Ok(Some(t)) => Ok(Some(t)),
            main => match Self::read_file(&self.bak_path()) {
                Ok(Some(t)) => {
                    tracing::warn!(path = %self.path.display(), "offsets file missing or unreadable; using the .bak copy");
                    Ok(Some(t))
                }
                _ => main,
            },
        }
    }

    fn write(&self, entries: Vec<(MessageQueue, i64)>) -> Result<(), OffsetStoreError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.display().to_string();
            move |source| OffsetStoreError::Io { path, op, source }
        };
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.path.parent().expect("offsets path has a parent");
        fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let tmp = with_suffix(&self.path, ".tmp");
        {
            let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(format_offsets_file(&entries).as_bytes())
                .map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        if self.path.exists() {
            fs::copy(&self.path, self.bak_path()).map_err(io("copy to .bak", &self.path))?;
        }
        fs::rename(&tmp, &self.path).map_err(io("rename", &tmp))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(LocalFileOffsetStore) -> Result<T, OffsetStoreError> + Send + 'static,
    ) -> Result<T, OffsetStoreError> {
        let this = self.clone();
        let path = self.path.display().to_string();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| OffsetStoreError::Io {
                path,
                op: "run blocking file task",
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl OffsetStore for LocalFileOffsetStore {
    fn load(&self) -> BoxFuture<'_, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            if let Some(table) = self.blocking(|s| s.read_with_fallback()).await? {
                for (mq, offset) in table {
                    self.table.update(&mq, offset, false);
                }
            }
            Ok(())
        })
    }

    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        self.table.update(mq, offset, increase_only);
    }

    fn read_offset<'a>(
        &'a self,
        mq: &'a MessageQueue,
        read_type: ReadOffsetType,
    ) -> BoxFuture<'a, Result<Option<i64>, OffsetStoreError>> {
        Box::pin(self.table.read_through(mq, read_type, || async {
            let table = self.blocking(|s| s.read_with_fallback()).await?;
            Ok(table.and_then(|t| t.get(mq).copied()))
        }))
    }

    /// Writes the whole table (a superset of `mqs`): the file is the only copy, and a
    /// queue not owned now keeps its offset for when it comes back (Java keeps it too).
    fn persist_all<'a>(
        &'a self,
        mqs: &'a [MessageQueue],
    ) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            if mqs.is_empty() {
                return Ok(());
            }
            let mut entries: Vec<(MessageQueue, i64)> =
                self.table.snapshot(None).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            self.blocking(move |s| s.write(entries)).await
        })
    }

    fn persist<'a>(&'a self, _mq: &'a MessageQueue) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        // The file holds the whole table: persisting one queue rewrites it.
        Box::pin(async move {
            let mut entries: Vec<(MessageQueue, i64)> =
                self.table.snapshot(None).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            self.blocking(move |s| s.write(entries)).await
        })
    }

    /// Keeps the offset (Java's `LocalFileOffsetStore.removeOffset` is a no-op too): the
    /// file holds every queue of the group, so a broadcasting consumer that gets a queue
    /// back resumes where it was.
    fn remove_offset(&self, _mq: &MessageQueue) {}

    fn clone_offset_table(&self, topic: Option<&str>) -> HashMap<MessageQueue, i64> {
        self.table.snapshot(topic)
    }
}
