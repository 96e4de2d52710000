//! The engine's doors to other systems: HTTP calls made by rule actions, and handlers for job
//! kinds that other crates own, such as webhook deliveries.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use steward_store::Job;

use crate::Engine;
use crate::error::EngineError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One HTTP request of an `http` action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub timeout: Duration,
    /// The same for every attempt of one action, so the receiver can drop repeats.
    pub idempotency_key: String,
}

/// What came back. Bodies are cut to [`MAX_RESPONSE_BODY`] characters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// Longest response body kept in a run's explanation, in characters.
pub const MAX_RESPONSE_BODY: usize = 4096;

/// Makes the HTTP calls of rule actions. The server wires an implementation on reqwest;
/// without one, `http` actions fail with a clear error.
pub trait Outbound: Send + Sync {
    fn call(&self, call: HttpCall) -> BoxFuture<'_, Result<HttpReply, EngineError>>;
}

/// Runs jobs of a kind that another crate owns. Returning an error records a failed attempt:
/// retried with backoff when transient, dead otherwise.
pub trait JobHandler: Send + Sync {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        job: &'a Job,
    ) -> BoxFuture<'a, Result<Value, EngineError>>;
}
