//! Bearer tokens: verification of the portal's JWTs, and minting of
//! development tokens for `roster token`.
//!
//! Accepted: HS256 with the configured secret, and RS256/ES256/EdDSA (plus
//! the other RSA/EC sizes a JWKS may name) with keys from a JWKS file or a
//! JWKS URL ([`super::jwks`], refreshed while roster runs). The
//! algorithm is never taken on the token's word alone: HS256 tokens are only
//! checked against the secret, asymmetric ones only against a JWKS key whose
//! type (and `alg`, if the key names one) matches, so an RSA public key can
//! never be used as an HMAC secret. `alg: none` is not an algorithm here.

use std::{
    collections::HashSet,
    path::Path,
    sync::{Arc, RwLock},
    time::Duration,
};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use serde::{Deserialize, Serialize};

use super::{
    Caller,
    claims::{self, EmailClaim, EmailVerified, OneOrMany},
    jwks::RemoteJwks,
};
use crate::domain::{
    Error, Reason,
    ids::{OrganizationId, UserId},
};

/// The secret roster uses when none is configured. It is public (it is in
/// this file), so roster refuses it on a non-loopback address unless told
/// explicitly that this is a development setup.
pub const DEVELOPMENT_SECRET: &str = "roster-development-secret-not-for-production";

/// The claims roster reads, in the shapes identity providers send them
/// ([`claims`] says which). `nbf` is checked by the verifier from the token
/// itself and is not kept.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Better Auth's JWT plugin puts the user as it stores it in its
    /// tokens, so a portal's tokens say `emailVerified`: the same claim.
    #[serde(default, alias = "emailVerified")]
    pub email_verified: EmailVerified,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OAuth-style scopes (`events.read authz.check`, or an array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<OneOrMany>,
    /// The same as `scope`, under the name some providers use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<OneOrMany>,
    /// The organizations a service principal's token is limited to: one
    /// id, or a list of them. Read only on service principals' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OneOrMany>,
    /// RFC 8693 §4.1: who acts for the subject (read whatever its shape,
    /// `null` included, and checked by [`claims::acting_party`]).
    #[serde(
        default,
        deserialize_with = "claims::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub act: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<OneOrMany>,
}

impl Claims {
    /// The distinct scopes of `scope` and `scp` together, in order.
    fn scopes(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.scope
            .iter()
            .chain(&self.scp)
            .flat_map(OneOrMany::scopes)
            .filter(|scope| seen.insert(*scope))
            .map(str::to_owned)
            .collect()
    }
}

/// The organizations an `org_id` claim names. A token whose claim cannot
/// be read as organization ids (or names none) is refused rather than
/// read as "no limit": a limit is never lost to a typo.
fn organization_limit(claim: &OneOrMany) -> Result<Vec<OrganizationId>, Refusal> {
    let values = claim.values();
    if values.is_empty() {
        return Err(Refusal::Invalid);
    }
    values
        .iter()
        .map(|value| OrganizationId::parse("org_id", value).map_err(|_| Refusal::Invalid))
        .collect()
}

/// A key from the JWKS, with the one algorithm it may verify.
struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// The longest a verified token is trusted without verifying it again.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// What one cache entry costs beyond its strings: the key and value
/// structs, the scope vector, and moka's own bookkeeping (its node, the
/// access-order and timer queues), rounded up.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Tokens already verified: token → (caller, trusted until, in Unix seconds).
type VerifiedCache = moka::sync::Cache<String, (Caller, u64)>;

/// Verifies bearer tokens. Built once at start-up from configuration.
pub struct TokenVerifier {
    secret: Option<DecodingKey>,
    /// Replaced as a whole when a JWKS URL is refreshed.
    public_keys: RwLock<Arc<Vec<PublicKey>>>,
    /// Where the keys are fetched from, if from a URL.
    remote: Option<RemoteJwks>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens already verified, bounded by their weight in bytes
    /// ([`entry_weight`]), not their number: a token can be 10 KB.
    verified: VerifiedCache,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("hs256", &self.secret.is_some())
            .field("public_keys", &self.keys().len())
            .field("remote", &self.remote)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// A configuration problem with the token settings.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl KeyError {
    pub(super) fn new(message: String) -> Self {
        Self(message)
    }
}

/// Why a token was not verified: an unknown `kid` may become known after a
/// refresh of a JWKS URL; anything else stays refused.
#[derive(Debug)]
enum Refusal {
    UnknownKey,
    Invalid,
    /// Signed and valid, but its `act` claim is malformed.
    InvalidAct,
}

impl Refusal {
    /// What the caller is told.
    fn error(&self) -> Error {
        match self {
            Refusal::UnknownKey | Refusal::Invalid => Error::Unauthenticated(Reason::InvalidToken),
            Refusal::InvalidAct => Error::Unauthenticated(Reason::InvalidActClaim),
        }
    }
}

impl TokenVerifier {
    /// `secret`: the HS256 secret, if HS256 tokens are accepted.
    /// `jwks`: the contents of a JWKS file, if asymmetric tokens are accepted.
    pub fn new(
        secret: Option<&str>,
        jwks: Option<&str>,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, KeyError> {
        let public_keys = match jwks {
            Some(text) => parse_jwks(text)?,
            None => Vec::new(),
        };
        if secret.is_none() && public_keys.is_empty() {
            return Err(KeyError(
                "no way to verify tokens: configure a JWT secret, a JWKS file or a JWKS URL".into(),
            ));
        }
        Self::build(secret, public_keys, None, issuer, audience)
    }

    /// A verifier whose asymmetric keys come from `remote`: it has none
    /// until [`TokenVerifier::refresh`] first succeeds.
    pub fn with_remote_jwks(
        secret: Option<&str>,
        remote: RemoteJwks,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, KeyError> {
        Self::build(secret, Vec::new(), Some(remote), issuer, audience)
    }

    fn build(
        secret: Option<&str>,
        public_keys: Vec<PublicKey>,
        remote: Option<RemoteJwks>,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, KeyError> {
        let secret = match secret {
            Some(s) if s.len() < 16 => {
                return Err(KeyError("the JWT secret must be at least 16 bytes".into()));
            }
            Some(s) => Some(
                DecodingKey::from_secret(s.as_bytes())
                    .map_err(|err| KeyError(format!("unusable JWT secret: {err}")))?,
            ),
            None => None,
        };
        Ok(Self {
            secret,
            public_keys: RwLock::new(Arc::new(public_keys)),
            remote,
            issuer,
            audience,
            verified: verified_cache(crate::config::defaults::TOKEN_CACHE_BYTES),
        })
    }

    /// The same verifier, remembering at most `bytes` of verified tokens.
    #[must_use]
    pub fn with_cache_budget(mut self, bytes: u64) -> Self {
        self.verified = verified_cache(bytes);
        self
    }

    /// Bytes the verified-token cache holds now, as [`entry_weight`] counts
    /// them (after applying pending evictions).
    pub fn cached_bytes(&self) -> u64 {
        self.verified.run_pending_tasks();
        self.verified.weighted_size()
    }

    /// Reads the JWKS file at `path` (see [`TokenVerifier::new`]).
    pub fn read_jwks(path: &Path) -> Result<String, KeyError> {
        std::fs::read_to_string(path)
            .map_err(|err| KeyError(format!("cannot read JWKS file {}: {err}", path.display())))
    }

    /// The JWKS URL the keys come from, if any.
    pub fn remote(&self) -> Option<&RemoteJwks> {
        self.remote.as_ref()
    }

    fn keys(&self) -> Arc<Vec<PublicKey>> {
        self.public_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches the JWKS URL and uses its keys; on failure the keys in use
    /// stay (and the failure is logged and counted). Without a URL, nothing.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let fetched = remote.fetch().await.and_then(|text| parse_jwks(&text));
        match fetched {
            Ok(keys) => {
                let count = keys.len();
                *self.public_keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                remote.succeeded(count);
                Ok(())
            }
            Err(err) => {
                remote.failed(&err);
                Err(err)
            }
        }
    }

    /// Refreshes the JWKS URL every refresh interval (and reports the key
    /// set's age between refreshes) until `stop` is cancelled.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let remote = self.remote.as_ref()?;
        let period = remote.refresh_interval();
        // The age gauge is only as fresh as its last update: keep it within
        // a few seconds even when refreshes are minutes apart.
        let age_period = period.min(Duration::from_secs(5));
        let verifier = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut refresh = tokio::time::interval(period);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut age = tokio::time::interval(age_period);
            // The first ticks are immediate; start has just fetched.
            refresh.tick().await;
            age.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = refresh.tick() => {
                        let Some(verifier) = verifier.upgrade() else { return };
                        // Failures are logged and counted by refresh itself.
                        let _ = verifier.refresh().await;
                    }
                    _ = age.tick() => {
                        let Some(verifier) = verifier.upgrade() else { return };
                        if let Some(remote) = verifier.remote() {
                            remote.report_age();
                        }
                    }
                }
            }
        }))
    }

    /// [`TokenVerifier::verify`], and when the token names a `kid` the JWKS
    /// URL did not have, one refresh (if the rate limit allows) and a
    /// second try: a key the identity provider just rotated in is accepted
    /// on its first token.
    pub async fn verify_refreshing(&self, token: &str) -> Result<Caller, Error> {
        let invalid = || Error::Unauthenticated(Reason::InvalidToken);
        match self.verify_cached(token) {
            Ok(caller) => return Ok(caller),
            Err(refusal @ (Refusal::Invalid | Refusal::InvalidAct)) => return Err(refusal.error()),
            Err(Refusal::UnknownKey) => {}
        }
        let Some(remote) = &self.remote else {
            return Err(invalid());
        };
        let keys_before = self.keys();
        if let Some(_slot) = remote.on_demand_slot().await {
            // Another token may have refreshed while this one waited for
            // the slot: fetch only if the keys are still those it missed.
            if Arc::ptr_eq(&keys_before, &self.keys()) {
                let _ = self.refresh().await;
            }
        }
        self.verify_cached(token).map_err(|refusal| refusal.error())
    }

    /// [`TokenVerifier::verify`] without waiting: `Ok(None)` when the token
    /// names a `kid` a refresh of the JWKS URL might bring, for
    /// [`TokenVerifier::verify_refreshing`] to settle.
    pub fn verify_now(&self, token: &str) -> Result<Option<Caller>, Error> {
        match self.verify_cached(token) {
            Ok(caller) => Ok(Some(caller)),
            Err(Refusal::UnknownKey) if self.remote.is_some() => Ok(None),
            Err(refusal) => Err(refusal.error()),
        }
    }

    /// Checks signature, algorithm, `exp` and `nbf`, and issuer/audience when
    /// configured; returns the caller the token speaks for. Uses the keys
    /// in hand: see [`TokenVerifier::verify_refreshing`] for a JWKS URL.
    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        self.verify_cached(token).map_err(|refusal| refusal.error())
    }

    fn verify_cached(&self, token: &str) -> Result<Caller, Refusal> {
        // Services send the same token on every call: a token verified
        // before is trusted again until its own expiry (or the cache's
        // time-to-live, whichever is first).
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((caller, expires)) = self.verified.get(token)
            && now < expires
        {
            return Ok(caller);
        }
        let (caller, expires) = self.verify_fully(token)?;
        self.verified
            .insert(token.to_owned(), (caller.clone(), expires));
        Ok(caller)
    }

    /// Verification without the cache; returns the caller and when to stop
    /// trusting the token (its `exp`, leeway included).
    fn verify_fully(&self, token: &str) -> Result<(Caller, u64), Refusal> {
        let invalid = || Refusal::Invalid;
        let header = decode_header(token).map_err(|_| invalid())?;
        let keys;
        let (key, algorithm) = if header.alg == Algorithm::HS256 {
            (self.secret.as_ref().ok_or_else(invalid)?, Algorithm::HS256)
        } else {
            keys = self.keys();
            let key = public_key_for(&keys, &header)?;
            (&key.key, key.algorithm)
        };
        let validation = self.validation(algorithm);
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|_| invalid())?
            .claims;
        let user_id = UserId::parse("sub", &claims.sub).map_err(|_| invalid())?;
        let (email, email_unusable) = match claims::email(claims.email.as_deref()) {
            EmailClaim::Absent => (None, false),
            EmailClaim::Usable(email) => (Some(email), false),
            EmailClaim::Unusable => (None, true),
        };
        let mut caller = Caller {
            user_id,
            email,
            email_unusable,
            email_verified: claims.email_verified.0,
            name: claims::display_name(claims.name.as_deref()),
            scopes: claims.scopes(),
            organizations: None,
            acting_party: claims::acting_party(claims.act.as_ref())
                .map_err(|_| Refusal::InvalidAct)?,
        };
        // People are limited by their memberships; an `org_id` in a
        // person's token (some identity providers put their own there) is
        // not roster's to read.
        if caller.is_service()
            && let Some(claim) = &claims.org_id
        {
            caller.organizations = Some(organization_limit(claim)?);
        }
        Ok((caller, claims.exp.saturating_add(LEEWAY_SECONDS)))
    }

    /// What a token for `algorithm` must satisfy.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        // A token is not valid before its `nbf` (less the same leeway).
        validation.validate_nbf = true;
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        validation
    }
}

/// The JWKS key for this header: by `kid`, or the only key if the token
/// names none; and only if the key is for exactly this algorithm.
fn public_key_for<'k>(keys: &'k [PublicKey], header: &Header) -> Result<&'k PublicKey, Refusal> {
    let key = match &header.kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid.as_str()))
            .ok_or(Refusal::UnknownKey)?,
        None if keys.len() == 1 => &keys[0],
        None => return Err(Refusal::Invalid),
    };
    if key.algorithm == header.alg {
        Ok(key)
    } else {
        Err(Refusal::Invalid)
    }
}

fn verified_cache(budget_bytes: u64) -> VerifiedCache {
    moka::sync::Cache::builder()
        .weigher(|token: &String, entry| entry_weight(token, entry))
        .max_capacity(budget_bytes)
        .time_to_live(VERIFIED_TTL)
        .build()
}

/// The bytes one verified token holds in the cache: the token itself, the
/// claims copied out of it, and a fixed overhead per entry.
fn entry_weight(token: &str, (caller, _): &(Caller, u64)) -> u32 {
    let claims = caller.user_id.as_str().len()
        + caller.email.as_ref().map_or(0, String::len)
        + caller.name.as_ref().map_or(0, String::len)
        + caller
            .scopes
            .iter()
            .map(|scope| scope.len() + std::mem::size_of::<String>())
            .sum::<usize>()
        + caller
            .organizations
            .as_ref()
            .map_or(0, |ids| ids.len() * std::mem::size_of::<OrganizationId>())
        + caller.acting_party.as_ref().map_or(0, String::len);
    let bytes = token.len() + claims + ENTRY_OVERHEAD_BYTES;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, KeyError> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|err| KeyError(format!("invalid JWKS: {err}")))?;
    if set.keys.is_empty() {
        return Err(KeyError("the JWKS has no keys".into()));
    }
    set.keys.iter().map(public_key).collect()
}

fn public_key(jwk: &Jwk) -> Result<PublicKey, KeyError> {
    let kid = jwk.common.key_id.clone();
    let name = kid.clone().unwrap_or_else(|| "(no kid)".into());
    // The algorithm each key type may verify, unless the key names one.
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(KeyError(format!("JWKS key {name}: unsupported EC curve"))),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // Symmetric ("oct") keys, and any key type added later: a JWKS is
        // for public keys; the HS256 secret is configured on its own.
        _ => {
            return Err(KeyError(format!(
                "JWKS key {name}: only RSA, EC (P-256/P-384) and Ed25519 public keys are accepted"
            )));
        }
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(alg) => Algorithm::try_from(alg)
            .map_err(|_| KeyError(format!("JWKS key {name}: unsupported alg {alg}")))?,
        None => implied,
    };
    // A key's `alg` must belong to its key type: an RSA key named "HS256"
    // would be the algorithm-confusion attack waiting to happen.
    if algorithm.family() != implied.family() {
        return Err(KeyError(format!(
            "JWKS key {name}: alg {algorithm:?} does not fit the key type"
        )));
    }
    let key =
        DecodingKey::from_jwk(jwk).map_err(|err| KeyError(format!("JWKS key {name}: {err}")))?;
    Ok(PublicKey {
        kid,
        algorithm,
        key,
    })
}

/// What a development token says.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub email_verified: bool,
    pub scopes: Vec<String>,
    /// Organization ids for the `org_id` claim (one: a string; more: a list).
    pub organizations: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The `sub` of an RFC 8693 `act` claim: who acts for `sub`.
    pub acting_party: Option<String>,
    pub ttl: Duration,
}

/// Signs an HS256 token with `secret` (for `roster token` and tests).
pub fn mint_hs256(secret: &str, request: &TokenRequest) -> Result<String, KeyError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: request.sub.clone(),
        exp: now + request.ttl.as_secs(),
        iat: Some(now),
        email: request.email.clone(),
        email_verified: EmailVerified(request.email_verified),
        name: request.name.clone(),
        scope: (!request.scopes.is_empty()).then(|| OneOrMany::One(request.scopes.join(" "))),
        scp: None,
        org_id: match request.organizations.as_slice() {
            [] => None,
            [one] => Some(OneOrMany::One(one.clone())),
            many => Some(OneOrMany::Many(many.to_vec())),
        },
        act: request
            .acting_party
            .as_ref()
            .map(|sub| serde_json::json!({ "sub": sub })),
        iss: request.issuer.clone(),
        aud: request.audience.clone().map(OneOrMany::One),
    };
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|err| KeyError(format!("unusable JWT secret: {err}")))?;
    encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|err| KeyError(format!("cannot sign the token: {err}")))
}

/// Distinct values of a repeatable, space- or comma-separated option
/// (`--scope`, `--org-id`), in order.
pub fn parse_scopes(values: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    values
        .iter()
        .flat_map(|v| v.split([' ', ',']))
        .filter(|s| !s.is_empty())
        .filter(|s| seen.insert(s.to_string()))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-enough-length";

    /// A valid token whose claims make it about `padding` bytes long.
    fn large_token(n: usize, padding: usize) -> String {
        mint_hs256(
            SECRET,
            &TokenRequest {
                sub: format!("user-{n}"),
                email: Some(format!("user-{n}@example.com")),
                name: Some("N".repeat(padding / 2)),
                scopes: vec!["s".repeat(padding / 4)],
                ttl: Duration::from_secs(3600),
                ..TokenRequest::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn the_token_cache_stays_within_its_byte_budget() {
        let budget = 1024 * 1024;
        let verifier = TokenVerifier::new(Some(SECRET), None, None, None)
            .unwrap()
            .with_cache_budget(budget);
        // 1,000 tokens of about 10 KB (with their claims, about 18 KB an
        // entry): over 8 MB of tokens offered to a 1 MB cache.
        let mut offered = 0;
        for n in 0..1_000 {
            let token = large_token(n, 10 * 1024);
            offered += token.len();
            verifier.verify(&token).unwrap();
        }
        assert!(offered > 8 * 1024 * 1024, "offered {offered} bytes");
        let held = verifier.cached_bytes();
        assert!(
            held <= budget,
            "{held} bytes cached over a budget of {budget}"
        );
        assert!(held > budget / 2, "the cache is used: {held} bytes");
    }

    #[test]
    fn an_entry_weighs_its_token_and_claims() {
        let token = large_token(1, 4 * 1024);
        let verifier = TokenVerifier::new(Some(SECRET), None, None, None).unwrap();
        let caller = verifier.verify_fully(&token).unwrap();
        let weight = entry_weight(&token, &caller) as usize;
        // The token, its 1 KB scope, and its name as kept (clipped to 400 characters).
        let claims = 1024 + 400;
        assert!(weight > token.len() + claims, "{weight}");
        assert!(weight < token.len() + claims + 1024, "{weight}");
    }
}
