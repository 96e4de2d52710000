//! Storage of webhooks: outbound endpoints, their deliveries and attempts; inbound endpoints,
//! their receipts (the responses kept per idempotency key) and rejections.
//!
//! Secrets reach the store already sealed by the webhook crate; the store keeps them as opaque
//! text and never receives a plain secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;
use crate::rows::{Job, Page};

/// A receiver that Steward sends signed webhooks to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundEndpoint {
    /// A lower-case slug, unique among outbound endpoints.
    pub id: String,
    pub url: String,
    /// The signing secret, sealed; never serialized.
    #[serde(skip)]
    pub sealed_secret: String,
    pub enabled: bool,
    /// The event names the endpoint accepts; every event when `None`.
    pub events: Option<Vec<String>>,
    /// How long one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The state of a delivery after its latest attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Succeeded,
    /// The latest attempt failed and the engine retries it.
    Retrying,
    /// Every attempt failed, or retrying cannot help; the job is a dead letter.
    Dead,
    /// The endpoint does not accept the delivery's event, so nothing was sent.
    Skipped,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Dead => "dead",
            DeliveryState::Skipped => "skipped",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "succeeded" => DeliveryState::Succeeded,
            "retrying" => DeliveryState::Retrying,
            "dead" => DeliveryState::Dead,
            "skipped" => DeliveryState::Skipped,
            _ => return None,
        })
    }
}

/// One outbound delivery: one event for one endpoint, attempted until it succeeds or dies.
/// Its id is the `webhook-id` header of every attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub endpoint: String,
    pub event: String,
    /// The job that carries the delivery.
    pub job: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// The delivery this one resends, when an operator resent one.
    pub resent_from: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One HTTP attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub id: String,
    pub delivery: String,
    pub endpoint: String,
    /// 1 for the first attempt of the delivery; replays of a dead delivery count on.
    pub attempt: u32,
    /// The receiver's status code; `None` when no response came.
    pub status: Option<u16>,
    /// Why the attempt failed: a transport error, a timeout or the response status.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub succeeded: bool,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    /// Deliveries with an id below this one; lists run newest first.
    pub before: Option<String>,
    pub limit: usize,
    pub endpoint: Option<String>,
    pub state: Option<DeliveryState>,
}

/// Figures of one outbound endpoint over a window that ends now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboundHealth {
    /// Deliveries attempted in the window.
    pub deliveries: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Failed attempts since the last successful one, at any time.
    pub consecutive_failures: u64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The median duration of the attempts in the window, in milliseconds.
    pub median_latency_ms: Option<f64>,
}

/// A named receiver that other systems post to at `/hooks/<id>`. `config` contains the
/// verification mode, the idempotency key source, the mapping and the response mode, as the
/// webhook crate defines them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundEndpoint {
    pub id: String,
    /// The signing secret or URL token, sealed; never serialized.
    #[serde(skip)]
    pub sealed_secret: String,
    pub config: Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The response given to the first delivery with an idempotency key, returned again to every
/// repeat until `expires_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundReceipt {
    pub endpoint: String,
    pub key: String,
    /// The event the delivery appended; `None` when it changed nothing.
    pub event: Option<String>,
    pub status: u16,
    pub body: Value,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An inbound delivery that was not accepted, with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundRejection {
    pub id: String,
    /// The endpoint id from the request path, which may name no endpoint.
    pub endpoint: String,
    /// A stable code such as `bad_signature`, `stale_timestamp` or `not_json`.
    pub reason: String,
    pub message: String,
    /// The status code of the response.
    pub status: u16,
    pub body_sha256: String,
    pub body_bytes: u64,
    pub received_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct RejectionQuery {
    /// Rejections with an id below this one; lists run newest first.
    pub before: Option<String>,
    pub limit: usize,
    pub endpoint: Option<String>,
}

/// Figures of one inbound endpoint over a window that ends now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundHealth {
    /// Deliveries accepted in the window, not counting repeats.
    pub accepted: u64,
    pub rejected: u64,
    pub last_accepted_at: Option<DateTime<Utc>>,
    pub last_rejected_at: Option<DateTime<Utc>>,
    pub last_rejection: Option<String>,
}

/// How many rows a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub receipts: u64,
    pub rejections: u64,
    pub attempts: u64,
    pub deliveries: u64,
}

/// Webhook reads, reached through [`crate::ReadTx::webhooks`].
pub trait WebhookRead {
    fn outbound_endpoint(&self, id: &str) -> Result<Option<OutboundEndpoint>, StoreError>;
    /// Lists every outbound endpoint in id order.
    fn outbound_endpoints(&self) -> Result<Vec<OutboundEndpoint>, StoreError>;

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;
    fn deliveries(&self, query: &DeliveryQuery) -> Result<Page<Delivery>, StoreError>;
    /// Lists the attempts of one delivery, first attempt first.
    fn delivery_attempts(&self, delivery: &str) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Returns the job that carries a delivery: the job keyed `webhook/<delivery>`.
    fn delivery_job(&self, delivery: &str) -> Result<Option<Job>, StoreError>;
    /// Figures of the attempts made to `endpoint` since `since`.
    fn outbound_health(
        &self,
        endpoint: &str,
        since: DateTime<Utc>,
    ) -> Result<OutboundHealth, StoreError>;

    fn inbound_endpoint(&self, id: &str) -> Result<Option<InboundEndpoint>, StoreError>;
    /// Lists every inbound endpoint in id order.
    fn inbound_endpoints(&self) -> Result<Vec<InboundEndpoint>, StoreError>;
    /// Returns the receipt for `key` at `endpoint`, unless it expired at or before `now`.
    fn inbound_receipt(
        &self,
        endpoint: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<InboundReceipt>, StoreError>;
    fn inbound_rejections(
        &self,
        query: &RejectionQuery,
    ) -> Result<Page<InboundRejection>, StoreError>;
    fn inbound_health(
        &self,
        endpoint: &str,
        since: DateTime<Utc>,
    ) -> Result<InboundHealth, StoreError>;
}

/// Webhook writes, reached through [`crate::WriteTx::webhooks_mut`].
pub trait WebhookWrite: WebhookRead {
    /// Fails with [`StoreError::Duplicate`] when the id is taken.
    fn insert_outbound_endpoint(&mut self, endpoint: &OutboundEndpoint) -> Result<(), StoreError>;
    /// Replaces the endpoint with the same id; returns false when there is none.
    fn update_outbound_endpoint(&mut self, endpoint: &OutboundEndpoint)
    -> Result<bool, StoreError>;
    /// Deletes the endpoint; its deliveries and attempts stay for the record.
    fn delete_outbound_endpoint(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Stores one attempt and brings its delivery's summary up to date, creating the delivery
    /// on its first attempt. The attempt number is the delivery's count of stored attempts
    /// plus one, whatever `attempt.attempt` contains; returns it.
    fn record_delivery_attempt(
        &mut self,
        delivery: &Delivery,
        attempt: &DeliveryAttempt,
    ) -> Result<u32, StoreError>;
    /// Stores a delivery that needs no attempt, such as one the endpoint does not accept.
    fn record_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError>;

    /// Fails with [`StoreError::Duplicate`] when the id is taken.
    fn insert_inbound_endpoint(&mut self, endpoint: &InboundEndpoint) -> Result<(), StoreError>;
    fn update_inbound_endpoint(&mut self, endpoint: &InboundEndpoint) -> Result<bool, StoreError>;
    /// Deletes the endpoint and its receipts; its rejections stay for the record.
    fn delete_inbound_endpoint(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Stores a receipt unless an unexpired one has the same key; an expired one is
    /// replaced. Returns whether the receipt was stored.
    fn insert_inbound_receipt(&mut self, receipt: &InboundReceipt) -> Result<bool, StoreError>;
    fn insert_inbound_rejection(&mut self, rejection: &InboundRejection) -> Result<(), StoreError>;

    /// Deletes receipts that expired at or before `now`, and rejections, attempts and
    /// finished deliveries older than `history_before`.
    fn purge_webhook_history(
        &mut self,
        now: DateTime<Utc>,
        history_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError>;
}

/// Behavioural checks of the webhook tables, run by [`crate::suite::run_all`].
pub(crate) mod checks {
    use chrono::{DateTime, Duration, Utc};
    use serde_json::json;
    use steward_domain::new_id;

    use super::*;
    use crate::{JobState, Store, read, write_blocking};

    fn t0() -> DateTime<Utc> {
        "2026-12-04T09:00:00Z".parse().unwrap()
    }

    fn outbound(id: &str) -> OutboundEndpoint {
        OutboundEndpoint {
            id: id.into(),
            url: format!("http://127.0.0.1:9/{id}"),
            sealed_secret: format!("sealed-{id}"),
            enabled: true,
            events: Some(vec!["invoice.sent".into()]),
            timeout_ms: 5_000,
            description: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn inbound(id: &str) -> InboundEndpoint {
        InboundEndpoint {
            id: id.into(),
            sealed_secret: format!("sealed-{id}"),
            config: json!({"verification": "token", "mapping": {"emit": "portal.request"}}),
            enabled: true,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn delivery(id: &str, endpoint: &str) -> Delivery {
        Delivery {
            id: id.into(),
            endpoint: endpoint.into(),
            event: "invoice.sent".into(),
            job: new_id(),
            state: DeliveryState::Retrying,
            attempts: 0,
            last_status: None,
            last_error: None,
            resent_from: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn attempt(
        delivery: &str,
        endpoint: &str,
        status: Option<u16>,
        duration_ms: u64,
        at: DateTime<Utc>,
    ) -> DeliveryAttempt {
        let succeeded = status.is_some_and(|s| (200..300).contains(&s));
        DeliveryAttempt {
            id: new_id(),
            delivery: delivery.into(),
            endpoint: endpoint.into(),
            attempt: 0,
            status,
            error: (!succeeded).then(|| "failed".to_string()),
            duration_ms,
            succeeded,
            at,
        }
    }

    fn write<T: Send + 'static>(
        store: &dyn Store,
        f: impl FnMut(&mut dyn crate::WriteTx) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        write_blocking(store, f)
    }

    pub fn endpoints_round_trip(store: &dyn Store) {
        let endpoint = outbound("billing");
        let stored = endpoint.clone();
        write(store, move |tx| {
            tx.webhooks_mut().insert_outbound_endpoint(&stored)
        })
        .unwrap();
        let again = endpoint.clone();
        let duplicate = write(store, move |tx| {
            tx.webhooks_mut().insert_outbound_endpoint(&again)
        });
        assert!(
            matches!(duplicate, Err(StoreError::Duplicate { .. })),
            "{duplicate:?}"
        );
        let read_back = read(store, |tx| tx.webhooks().outbound_endpoint("billing")).unwrap();
        assert_eq!(read_back, Some(endpoint.clone()));

        let mut changed = endpoint.clone();
        changed.enabled = false;
        changed.events = None;
        changed.sealed_secret = "sealed-rotated".into();
        let update = changed.clone();
        assert!(
            write(store, move |tx| tx
                .webhooks_mut()
                .update_outbound_endpoint(&update))
            .unwrap()
        );
        let missing = outbound("nobody");
        assert!(
            !write(store, move |tx| tx
                .webhooks_mut()
                .update_outbound_endpoint(&missing))
            .unwrap()
        );
        let listed = read(store, |tx| tx.webhooks().outbound_endpoints()).unwrap();
        assert_eq!(listed, vec![changed]);
        assert!(
            write(store, |tx| tx
                .webhooks_mut()
                .delete_outbound_endpoint("billing"))
            .unwrap()
        );
        assert!(
            !write(store, |tx| tx
                .webhooks_mut()
                .delete_outbound_endpoint("billing"))
            .unwrap()
        );

        let portal = inbound("portal");
        let stored = portal.clone();
        write(store, move |tx| {
            tx.webhooks_mut().insert_inbound_endpoint(&stored)
        })
        .unwrap();
        let again = portal.clone();
        assert!(matches!(
            write(store, move |tx| tx
                .webhooks_mut()
                .insert_inbound_endpoint(&again)),
            Err(StoreError::Duplicate { .. })
        ));
        let mut changed = portal.clone();
        changed.config = json!({"verification": "standard"});
        let update = changed.clone();
        assert!(
            write(store, move |tx| tx
                .webhooks_mut()
                .update_inbound_endpoint(&update))
            .unwrap()
        );
        assert_eq!(
            read(store, |tx| tx.webhooks().inbound_endpoint("portal")).unwrap(),
            Some(changed.clone())
        );
        assert_eq!(
            read(store, |tx| tx.webhooks().inbound_endpoints()).unwrap(),
            vec![changed]
        );
        assert!(
            write(store, |tx| tx
                .webhooks_mut()
                .delete_inbound_endpoint("portal"))
            .unwrap()
        );
        assert_eq!(
            read(store, |tx| tx.webhooks().inbound_endpoint("portal")).unwrap(),
            None
        );
    }

    pub fn attempts_number_and_summarise(store: &dyn Store) {
        let first = delivery("01JDELIVERY0000000000000001", "billing");
        let now = t0();
        let steps = [
            (Some(503), 120, now - Duration::minutes(50)),
            (None, 1_000, now - Duration::minutes(40)),
            (Some(204), 40, now - Duration::minutes(30)),
        ];
        let mut numbers = Vec::new();
        for (status, duration, at) in steps {
            let mut summary = first.clone();
            let tried = attempt(&first.id, "billing", status, duration, at);
            summary.state = if tried.succeeded {
                DeliveryState::Succeeded
            } else {
                DeliveryState::Retrying
            };
            summary.updated_at = at;
            numbers.push(
                write(store, move |tx| {
                    tx.webhooks_mut().record_delivery_attempt(&summary, &tried)
                })
                .unwrap(),
            );
        }
        assert_eq!(numbers, vec![1, 2, 3]);
        let stored = read(store, |tx| {
            tx.webhooks().delivery("01JDELIVERY0000000000000001")
        })
        .unwrap()
        .expect("the delivery is stored on its first attempt");
        assert_eq!(stored.state, DeliveryState::Succeeded);
        assert_eq!(stored.attempts, 3);
        assert_eq!(stored.last_status, Some(204));
        assert_eq!(stored.created_at, first.created_at);
        let attempts = read(store, |tx| {
            tx.webhooks()
                .delivery_attempts("01JDELIVERY0000000000000001")
        })
        .unwrap();
        let numbered: Vec<u32> = attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbered, vec![1, 2, 3]);
        assert_eq!(attempts[1].status, None);

        // A later delivery fails twice: two consecutive failures after the last success.
        let second = delivery("01JDELIVERY0000000000000002", "billing");
        for minutes in [20, 10] {
            let tried = attempt(
                &second.id,
                "billing",
                Some(500),
                300,
                now - Duration::minutes(minutes),
            );
            let summary = second.clone();
            write(store, move |tx| {
                tx.webhooks_mut().record_delivery_attempt(&summary, &tried)
            })
            .unwrap();
        }
        // An attempt two days ago stays out of the window but not out of the history.
        let mut old = delivery("01JDELIVERY0000000000000000", "billing");
        old.state = DeliveryState::Succeeded;
        let tried = attempt(
            &old.id,
            "billing",
            Some(200),
            9_000,
            now - Duration::days(2),
        );
        write(store, move |tx| {
            tx.webhooks_mut().record_delivery_attempt(&old, &tried)
        })
        .unwrap();

        let since = now - Duration::hours(24);
        let health = read(store, move |tx| {
            tx.webhooks().outbound_health("billing", since)
        })
        .unwrap();
        assert_eq!(health.deliveries, 2);
        assert_eq!(health.attempts, 5);
        assert_eq!(health.failed_attempts, 4);
        assert_eq!(health.consecutive_failures, 2);
        assert_eq!(health.last_success_at, Some(now - Duration::minutes(30)));
        assert_eq!(health.last_failure_at, Some(now - Duration::minutes(10)));
        // Durations in the window: 40, 120, 300, 300, 1000.
        assert_eq!(health.median_latency_ms, Some(300.0));
        let idle = read(store, move |tx| {
            tx.webhooks().outbound_health("idle", since)
        })
        .unwrap();
        assert_eq!(idle, OutboundHealth::default());

        let page = read(store, |tx| {
            tx.webhooks().deliveries(&DeliveryQuery {
                limit: 2,
                endpoint: Some("billing".into()),
                ..Default::default()
            })
        })
        .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["01JDELIVERY0000000000000002", "01JDELIVERY0000000000000001"]
        );
        let cursor = page.next_cursor.expect("a third delivery follows");
        let rest = read(store, move |tx| {
            tx.webhooks().deliveries(&DeliveryQuery {
                before: Some(cursor.clone()),
                limit: 2,
                state: Some(DeliveryState::Succeeded),
                ..Default::default()
            })
        })
        .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.items[0].id, "01JDELIVERY0000000000000000");
        assert_eq!(rest.next_cursor, None);
    }

    pub fn delivery_job_found_by_key(store: &dyn Store) {
        let job = crate::Job {
            id: new_id(),
            key: "webhook/01JDELIVERY0000000000000009".into(),
            kind: "webhook_delivery".into(),
            run_id: None,
            payload: json!({"delivery": "01JDELIVERY0000000000000009"}),
            state: JobState::Pending,
            attempts: 0,
            max_attempts: 3,
            run_at: t0(),
            lease_until: None,
            last_error: None,
            replays: 0,
            created_at: t0(),
            updated_at: t0(),
        };
        let stored = job.clone();
        write(store, move |tx| tx.insert_job(&stored)).unwrap();
        let found = read(store, |tx| {
            tx.webhooks().delivery_job("01JDELIVERY0000000000000009")
        })
        .unwrap();
        assert_eq!(found.map(|j| j.id), Some(job.id));
        assert_eq!(
            read(store, |tx| tx
                .webhooks()
                .delivery_job("01JDELIVERY0000000000000008"))
            .unwrap(),
            None
        );
    }

    pub fn receipts_deduplicate_until_expiry(store: &dyn Store) {
        let receipt = InboundReceipt {
            endpoint: "portal".into(),
            key: "msg_1".into(),
            event: Some(new_id()),
            status: 202,
            body: json!({"accepted": "x"}),
            received_at: t0(),
            expires_at: t0() + Duration::days(7),
        };
        let first = receipt.clone();
        assert!(
            write(store, move |tx| tx
                .webhooks_mut()
                .insert_inbound_receipt(&first))
            .unwrap()
        );
        let mut repeat = receipt.clone();
        repeat.body = json!({"accepted": "y"});
        repeat.received_at = t0() + Duration::hours(1);
        let second = repeat.clone();
        assert!(
            !write(store, move |tx| tx
                .webhooks_mut()
                .insert_inbound_receipt(&second))
            .unwrap(),
            "an unexpired key keeps its first receipt"
        );
        let kept = read(store, |tx| {
            tx.webhooks()
                .inbound_receipt("portal", "msg_1", t0() + Duration::days(1))
        })
        .unwrap();
        assert_eq!(kept, Some(receipt.clone()));
        let other_endpoint = read(store, |tx| {
            tx.webhooks()
                .inbound_receipt("other", "msg_1", t0() + Duration::days(1))
        })
        .unwrap();
        assert_eq!(other_endpoint, None, "keys are scoped by endpoint");
        let after_expiry = t0() + Duration::days(7);
        let expired = read(store, move |tx| {
            tx.webhooks()
                .inbound_receipt("portal", "msg_1", after_expiry)
        })
        .unwrap();
        assert_eq!(expired, None, "an expired receipt is not returned");

        let mut late = receipt.clone();
        late.received_at = after_expiry;
        late.expires_at = after_expiry + Duration::days(7);
        late.body = json!({"accepted": "z"});
        let replacement = late.clone();
        assert!(
            write(store, move |tx| tx
                .webhooks_mut()
                .insert_inbound_receipt(&replacement))
            .unwrap(),
            "an expired receipt is replaced"
        );
        let health = read(store, |tx| tx.webhooks().inbound_health("portal", t0())).unwrap();
        assert_eq!(health.accepted, 1);
        assert_eq!(health.last_accepted_at, Some(after_expiry));

        let purge_at = after_expiry + Duration::days(8);
        let purged = write(store, move |tx| {
            tx.webhooks_mut()
                .purge_webhook_history(purge_at, purge_at - Duration::days(30))
        })
        .unwrap();
        assert_eq!(purged.receipts, 1);
        let gone = read(store, move |tx| {
            tx.webhooks().inbound_receipt("portal", "msg_1", t0())
        })
        .unwrap();
        assert_eq!(gone, None);
    }

    pub fn rejections_page_newest_first(store: &dyn Store) {
        let mut ids = Vec::new();
        for (n, reason) in ["bad_signature", "stale_timestamp", "not_json"]
            .iter()
            .enumerate()
        {
            let rejection = InboundRejection {
                id: format!("01JREJECTION00000000000000{n}"),
                endpoint: "portal".into(),
                reason: reason.to_string(),
                message: format!("rejected because of {reason}"),
                status: 401,
                body_sha256: "00".repeat(32),
                body_bytes: 12,
                received_at: t0() + Duration::minutes(n as i64),
            };
            ids.push(rejection.id.clone());
            write(store, move |tx| {
                tx.webhooks_mut().insert_inbound_rejection(&rejection)
            })
            .unwrap();
        }
        let other = InboundRejection {
            id: new_id(),
            endpoint: "elsewhere".into(),
            reason: "unknown_endpoint".into(),
            message: "no endpoint".into(),
            status: 404,
            body_sha256: String::new(),
            body_bytes: 0,
            received_at: t0(),
        };
        write(store, move |tx| {
            tx.webhooks_mut().insert_inbound_rejection(&other)
        })
        .unwrap();

        let page = read(store, |tx| {
            tx.webhooks().inbound_rejections(&RejectionQuery {
                limit: 2,
                endpoint: Some("portal".into()),
                ..Default::default()
            })
        })
        .unwrap();
        let reasons: Vec<&str> = page.items.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, vec!["not_json", "stale_timestamp"]);
        let cursor = page.next_cursor.clone().expect("one more rejection");
        let rest = read(store, move |tx| {
            tx.webhooks().inbound_rejections(&RejectionQuery {
                before: Some(cursor.clone()),
                limit: 2,
                endpoint: Some("portal".into()),
            })
        })
        .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert_eq!(rest.items[0].id, ids[0]);
        let health = read(store, |tx| tx.webhooks().inbound_health("portal", t0())).unwrap();
        assert_eq!(health.rejected, 3);
        assert_eq!(health.last_rejection.as_deref(), Some("not_json"));

        let purged = write(store, |tx| {
            tx.webhooks_mut()
                .purge_webhook_history(t0(), t0() + Duration::minutes(1))
        })
        .unwrap();
        assert_eq!(
            purged.rejections, 2,
            "rejections of any endpoint older than the horizon go"
        );
    }
}
