//! Bearer-token authentication. Tokens are 32 random bytes; only their SHA-256 is stored, so
//! a copy of the database does not give access.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use steward_domain::{Actor, new_id};
use steward_store::{StoreError, Token};

use crate::AppState;
use crate::error::ApiError;

/// The roles a token can have.
pub const ROLES: &[&str] = steward_domain::roles::BUILT_IN;

/// Prefix of every token, so that a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "stw_";

pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Generates a new secret token.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Builds a token row for `secret`; the caller stores it.
pub fn token_row(
    name: &str,
    role: &str,
    employee: Option<String>,
    secret: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Token, String> {
    if !ROLES.contains(&role) {
        return Err(format!(
            "`{role}` is not a role; use one of {}",
            ROLES.join(", ")
        ));
    }
    if name.trim().is_empty() || name.len() > 100 {
        return Err("a token name must be 1 to 100 characters".into());
    }
    if secret.len() < 20 {
        return Err(
            "a token must be at least 20 characters; leave it out to get a generated one".into(),
        );
    }
    Ok(Token {
        id: new_id(),
        name: name.trim().to_string(),
        role: role.to_string(),
        hash: hash_token(secret),
        employee,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    })
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: String,
    pub employee: Option<String>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        if self.role == "integration" {
            Actor::integration(&self.name)
        } else {
            Actor::user(&self.name)
        }
    }

    /// Fails unless the caller has one of `roles`.
    pub fn require(&self, roles: &[&str], action: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the role `{}` may not {action}; it needs one of {}",
                self.role,
                roles.join(", ")
            )))
        }
    }

    /// Fails for read-only roles.
    pub fn require_writer(&self) -> Result<(), ApiError> {
        if self.role == "auditor" {
            return Err(ApiError::forbidden(
                "the role `auditor` can read but not change anything",
            ));
        }
        Ok(())
    }
}

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <token>`"))?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
        // The scheme name is case-insensitive, so `bearer` and `BEARER` are accepted too.
        let secret = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, secret)| secret.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let hash = hash_token(secret);
        let token =
            steward_store::read_async(state.store.clone(), move |tx| tx.token_by_hash(&hash))
                .await
                .map_err(ApiError::from)?;
        match token {
            Some(token) if token.revoked_at.is_none() => Ok(Principal {
                token_id: token.id,
                name: token.name,
                role: token.role,
                employee: token.employee,
            }),
            Some(_) => Err(ApiError::unauthorized(
                "this token was revoked; ask an administrator for a new one",
            )),
            None => Err(ApiError::unauthorized("the token is not valid")),
        }
    }
}

/// Creates the first admin token when the database has none: the given secret, or a
/// generated one. Returns the generated secret, which the caller shows once.
pub async fn ensure_admin_token(
    store: std::sync::Arc<dyn steward_store::Store>,
    given: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, String> {
    let existing = steward_store::read_async(store.clone(), |tx| tx.tokens())
        .await
        .map_err(|e| e.to_string())?;
    if existing
        .iter()
        .any(|t| t.revoked_at.is_none() && t.role == "admin")
    {
        if let Some(secret) = given {
            let hash = hash_token(&secret);
            if !existing.iter().any(|t| t.hash == hash) {
                tracing::warn!(
                    "STEWARD_ADMIN_TOKEN is set but an admin token exists already; the variable is ignored"
                );
            }
        }
        return Ok(None);
    }
    let generated = given.is_none();
    let secret = given.unwrap_or_else(new_secret);
    let name = if existing.iter().any(|t| t.name == "admin") {
        format!("admin-{}", &new_id()[..8])
    } else {
        "admin".to_string()
    };
    let row = token_row(&name, "admin", None, &secret, now)?;
    steward_store::write::<_, StoreError, _>(store.as_ref(), move |tx| tx.insert_token(&row))
        .await
        .map_err(|e| e.to_string())?;
    Ok(generated.then_some(secret))
}
