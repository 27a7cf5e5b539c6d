//! The queue table and the per-queue pull task of a started lite pull consumer.

use super::*;

impl Core {
    pub(super) fn add_queue(self: &Arc<Self>, mq: &MessageQueue, offset: i64) {
        let st = QueueState {
            pq: Arc::new(ProcessQueue::new(Arc::clone(&self.cached_bytes))),
            token: self.token.child_token(),
            paused: Arc::new(AtomicBool::new(false)),
            epoch: Arc::new(AtomicU64::new(0)),
            seek_to: Arc::new(AtomicI64::new(-1)),
            seeked: Arc::new(Notify::new()),
        };
        lock(&self.queues).insert(mq.clone(), st.clone());
        let core = Arc::clone(self);
        let mq = mq.clone();
        self.tracker
            .spawn(async move { core.pull_task(mq, st, offset).await });
    }

    pub(super) async fn remove_queue(&self, mq: &MessageQueue) {
        let st = lock(&self.queues).remove(mq);
        if let Some(st) = st {
            st.token.cancel();
            st.pq.set_dropped(true);
            st.pq.clear();
        }
        let polled = lock(&self.consumed).remove(mq);
        if let Some(offset) = polled.filter(|_| self.config.auto_commit) {
            self.offset_store.update_offset(mq, offset, true);
            let _ = self.offset_store.persist(mq).await;
        }
    }

    /// Writes the polled offsets into the store; `sync` waits for each queue's commit.
    /// Returns whether every commit succeeded.
    /// Commits what was polled; the first store error, after trying every queue.
    pub(super) async fn commit(
        &self,
        sync: bool,
    ) -> Result<(), rmq_offset_store::OffsetStoreError> {
        let polled: Vec<(MessageQueue, i64)> = lock(&self.consumed)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (mq, offset) in &polled {
            self.offset_store.update_offset(mq, *offset, true);
        }
        let mut first = None;
        if sync {
            for (mq, _) in &polled {
                if let Err(e) = self.offset_store.persist(mq).await {
                    tracing::warn!(?mq, error = %e, "commit failed");
                    first.get_or_insert(e);
                }
            }
        } else {
            let queues: Vec<MessageQueue> = polled.into_iter().map(|(mq, _)| mq).collect();
            if let Err(e) = self.offset_store.persist_all(&queues).await {
                tracing::warn!(error = %e, "auto-commit failed");
                first = Some(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    pub(super) async fn pull_task(
        self: Arc<Self>,
        mq: MessageQueue,
        st: QueueState,
        mut next: i64,
    ) {
        let QueueState {
            pq,
            token,
            paused,
            epoch,
            seek_to,
            seeked,
        } = st;
        let pause = |d: Duration| {
            let token = token.clone();
            async move {
                tokio::select! {
                    _ = token.cancelled() => false,
                    _ = tokio::time::sleep(d) => true,
                }
            }
        };
        let Some(sub) = lock(&self.subscriptions).get(&mq.topic).cloned() else {
            return;
        };
        loop {
            if token.is_cancelled() {
                return;
            }
            let seek = seek_to.swap(-1, Ordering::AcqRel);
            if seek >= 0 {
                next = seek;
            }
            if paused.load(Ordering::Acquire) {
                if !pause(Duration::from_millis(1000)).await {
                    return;
                }
                continue;
            }
            let c = &self.config;
            if pq.msg_count() > c.pull_threshold_for_queue
                || pq.msg_bytes() > c.pull_threshold_size_for_queue
                || pq.max_span() > c.consume_max_span
            {
                if !pause(Duration::from_millis(50)).await {
                    return;
                }
                continue;
            }
            // Registered before the epoch is read, so a seek from here on wakes it.
            let seek_wake = seeked.notified();
            tokio::pin!(seek_wake);
            seek_wake.as_mut().enable();
            let my_epoch = epoch.load(Ordering::Acquire);
            if seek_to.load(Ordering::Acquire) >= 0 {
                continue;
            }
            let started = std::time::Instant::now();
            let pulled = tokio::select! {
                _ = token.cancelled() => return,
                _ = &mut seek_wake => continue,
                r = self.kernel.pull(PullSpec {
                    mq: &mq,
                    subscription: &sub,
                    offset: next,
                    max_msg_nums: c.pull_batch_size,
                    commit_offset: None,
                    suspend: Some(c.broker_suspend_max_time),
                    post_subscription: true,
                    timeout: c.consumer_timeout_when_suspend,
                }) => r,
            };
            if epoch.load(Ordering::Acquire) != my_epoch {
                continue; // a seek happened while pulling: this result is stale
            }
            match pulled {
                Ok(mut r) => {
                    next = r.next_begin_offset;
                    match r.status {
                        PullStatus::Found if !r.messages.is_empty() => {
                            let msgs = std::mem::take(&mut r.messages);
                            if !pq.put_messages(&msgs) {
                                return; // draining: these stay unconsumed and uncommitted
                            }
                            let batch = Batch {
                                mq: mq.clone(),
                                epoch: my_epoch,
                                msgs,
                            };
                            tokio::select! {
                                _ = token.cancelled() => return,
                                sent = self.tx.send(batch) => if sent.is_err() { return },
                            }
                        }
                        PullStatus::OffsetIllegal => {
                            tracing::warn!(
                                ?mq,
                                next,
                                "pull offset illegal; continuing at the corrected offset"
                            );
                        }
                        _ => {
                            if let Some(d) = rmq_client_core::pull_kernel::unheld_empty_pull_pause(
                                &r,
                                started.elapsed(),
                            ) && !pause(d).await
                            {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(?mq, error = %e, "pull failed");
                    if !pause(self.client.pull_time_delay_when_exception).await {
                        return;
                    }
                }
            }
        }
    }
}
