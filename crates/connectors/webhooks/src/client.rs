//! The HTTP client of `http` rule actions, on reqwest with rustls.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use steward_engine::EngineError;
use steward_engine::outbound::{BoxFuture, HttpCall, HttpReply, MAX_RESPONSE_BODY, Outbound};

use crate::error::WebhookError;

/// The `User-Agent` of every request Steward sends.
pub const AGENT: &str = concat!("Steward/", env!("CARGO_PKG_VERSION"));

/// Builds a reqwest client; `follow_redirects` lets `http` actions follow up to five
/// redirects, while webhook deliveries treat a redirect as a failed attempt.
pub(crate) fn build_client(follow_redirects: bool) -> Result<reqwest::Client, WebhookError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(redirects)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| WebhookError::Secret(format!("cannot build the HTTP client: {e}")))
}

/// Makes the calls of `http` actions: the call's method, headers and JSON body, its timeout,
/// and its `Idempotency-Key` header, the same on every attempt of one action.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, WebhookError> {
        Ok(HttpClient {
            client: build_client(true)?,
        })
    }

    async fn send(&self, call: HttpCall) -> Result<HttpReply, EngineError> {
        let permanent = |message: String| EngineError::External {
            message,
            transient: false,
        };
        let method = reqwest::Method::from_bytes(call.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| permanent(format!("`{}` is not an HTTP method", call.method)))?;
        let url = reqwest::Url::parse(&call.url)
            .map_err(|e| permanent(format!("the URL of the call is invalid: {e}")))?;
        let target = describe_target(&method, &url);
        let mut request = self
            .client
            .request(method, url)
            .timeout(call.timeout)
            .header(USER_AGENT, AGENT)
            .header("Idempotency-Key", &call.idempotency_key);
        for (name, value) in &call.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| permanent(format!("`{name}` is not a valid header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| permanent(format!("the value of header `{name}` is not valid")))?;
            request = request.header(name, value);
        }
        if let Some(body) = &call.body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| permanent(format!("the body cannot be encoded: {e}")))?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&target, &error, call.timeout))?;
        let status = response.status().as_u16();
        let body = read_body(response, MAX_RESPONSE_BODY)
            .await
            .map_err(|error| transport_error(&target, &error, call.timeout))?;
        Ok(HttpReply { status, body })
    }
}

impl Outbound for HttpClient {
    fn call(&self, call: HttpCall) -> BoxFuture<'_, Result<HttpReply, EngineError>> {
        Box::pin(self.send(call))
    }
}

/// Names a request by its method, host and port, leaving out the path and query, which may
/// hold a secret (Odoo's webhook URLs do).
pub(crate) fn describe_target(method: &reqwest::Method, url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("an unknown host");
    match url.port_or_known_default() {
        Some(port) => format!("{method} to {host}:{port}"),
        None => format!("{method} to {host}"),
    }
}

/// Builds the transient error of a request that got no complete response.
pub(crate) fn transport_error(
    target: &str,
    error: &reqwest::Error,
    timeout: Duration,
) -> EngineError {
    let message = if error.is_timeout() {
        format!(
            "{target} timed out after {} ms; it may or may not have been processed",
            timeout.as_millis()
        )
    } else if error.is_connect() {
        format!("{target} could not connect: {}", root_cause(error))
    } else {
        format!("{target} failed: {}", root_cause(error))
    };
    EngineError::External {
        message,
        transient: true,
    }
}

/// The innermost cause of a reqwest error. The error's own message is left out because it
/// holds the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause = None;
    let mut source = std::error::Error::source(error);
    while let Some(next) = source {
        cause = Some(next.to_string());
        source = next.source();
    }
    cause.unwrap_or_else(|| {
        if error.is_body() {
            "the body could not be read".into()
        } else if error.is_redirect() {
            "it redirected too often".into()
        } else {
            "the request could not be sent".into()
        }
    })
}

/// Reads at most `max_chars` characters of a response body and drops the rest unread.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    max_chars: usize,
) -> Result<String, reqwest::Error> {
    // A character takes at most four bytes in UTF-8.
    let max_bytes = max_chars.saturating_mul(4);
    let mut bytes = Vec::new();
    while bytes.len() < max_bytes {
        match response.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    bytes.truncate(max_bytes);
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.chars().take(max_chars).collect())
}
