//! `rmq produce`: counted or stdin messages, single or batched.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn produce(
    cluster: &Cluster,
    topic: &str,
    count: Option<u64>,
    size: usize,
    tag: Option<String>,
    keys: Option<String>,
    concurrency: usize,
    batch: usize,
    create_queues: Option<i32>,
) -> Result<(), Failure> {
    let client = client_config(cluster, "produce")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    if let Some(queues) = create_queues {
        instance.create_topic(topic, queues).await.map_err(fail)?;
    }
    let producer = Producer::new(
        &instance,
        &format!("rmq-cli-producer-{}", std::process::id()),
    )
    .map_err(fail)?;
    let make = |body: Vec<u8>| {
        let mut m = Message::new(topic, body);
        if let Some(t) = &tag {
            m = m.tags(t.clone());
        }
        if let Some(k) = &keys {
            m = m.keys(k.split(' ').filter(|s| !s.is_empty()));
        }
        m
    };
    let started = Instant::now();
    let mut set: tokio::task::JoinSet<Result<u64, String>> = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    let concurrency = concurrency.max(1);
    let batch = batch.max(1);
    let mut pending: Vec<Message> = Vec::with_capacity(batch);
    let mut bodies: Box<dyn Iterator<Item = Vec<u8>> + Send> = match count {
        Some(n) => {
            let body = vec![b'x'; size];
            Box::new((0..n).map(move |_| body.clone()))
        }
        None => Box::new(std::iter::empty()),
    };
    // Lines are read as bytes: a body need not be UTF-8.
    let mut stdin = count
        .is_none()
        .then(|| tokio::io::BufReader::new(tokio::io::stdin()));
    loop {
        let next = match stdin.as_mut() {
            Some(r) => {
                use tokio::io::AsyncBufReadExt;
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line).await.map_err(fail)? == 0 {
                    None
                } else {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Some(line)
                }
            }
            None => bodies.next(),
        };
        let done = next.is_none();
        if let Some(body) = next {
            pending.push(make(body));
        }
        if pending.len() >= batch || (done && !pending.is_empty()) {
            while set.len() >= concurrency {
                sent += set
                    .join_next()
                    .await
                    .expect("non-empty")
                    .map_err(fail)?
                    .map_err(|e| Failure(1, e))?;
            }
            let p = producer.clone();
            let msgs = std::mem::replace(&mut pending, Vec::with_capacity(batch));
            set.spawn(async move {
                let n = msgs.len() as u64;
                let r = if n == 1 {
                    p.send(msgs.into_iter().next().expect("one")).await
                } else {
                    p.send_batch(msgs).await
                };
                r.map(|_| n).map_err(|e| error_chain(&e))
            });
        }
        if done {
            break;
        }
    }
    while let Some(r) = set.join_next().await {
        sent += r.map_err(fail)?.map_err(|e| Failure(1, e))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        serde_json::json!({"sent": sent, "seconds": (secs * 1000.0).round() / 1000.0, "msgs_per_sec": (sent as f64 / secs.max(1e-9)).round()})
    );
    producer.shutdown().await;
    instance.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
