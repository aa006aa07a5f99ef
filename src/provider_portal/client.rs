//! The Provider Portal's developer API over HTTP (reqwest), as its OpenAPI
//! description ("API7 Enterprise Developer Portal APIs") has it:
//! `POST /api/developers`, `DELETE /api/developers/{developer_id}` and
//! `GET /api/developers`, each with `Authorization: Bearer <portal token>`.
//!
//! Every failure becomes a [`PortalError`] that says whether it concerns
//! the one developer (the portal refused this id) or the portal as a whole
//! (wrong token, outage, timeout, an answer that does not parse), so the
//! worker can back off as a whole instead of spinning through its rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Response, StatusCode, header};
use serde::Deserialize;
use url::Url;

use super::config::ProviderPortalSettings;
use crate::domain::{identity::PortalStatus, ids::DeveloperId};

/// Developers asked for per page of `GET /api/developers`.
const PAGE_SIZE: u32 = 100;
/// Pages a listing follows at most (100,000 developers), so a portal that
/// keeps answering cannot keep roster paging forever.
const MAX_PAGES: u32 = 1_000;
/// Longest error text kept from a portal's answer.
const MAX_ERROR_TEXT: usize = 200;

/// A developer as the Provider Portal describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Developer {
    pub id: String,
    pub name: String,
    pub status: PortalStatus,
    pub created_at: Option<DateTime<Utc>>,
}

/// Why a call to the Provider Portal did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalError {
    /// 401 or 403: the token is wrong, expired or lacks the permission.
    #[error("the Provider Portal refused roster's token (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// Another 4xx: the portal refused this request.
    #[error("the Provider Portal refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// 5xx, 408 or 429: the portal failed or asks to wait.
    #[error("the Provider Portal failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("the Provider Portal did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the Provider Portal: {0}")]
    Unreachable(String),
    /// An answer that is not what the API describes.
    #[error("the Provider Portal's answer is malformed (HTTP {status}): {detail}")]
    Malformed { status: u16, detail: String },
}

impl PortalError {
    /// The HTTP status the portal answered with, 0 if none.
    pub fn status(&self) -> u16 {
        match self {
            PortalError::Unauthorized { status, .. }
            | PortalError::Rejected { status, .. }
            | PortalError::Server { status, .. }
            | PortalError::Malformed { status, .. } => *status,
            PortalError::Timeout(_) | PortalError::Unreachable(_) => 0,
        }
    }

    /// Whether this says something about the portal as a whole rather than
    /// about the one developer: then retrying other rows now cannot help.
    pub fn is_portal_wide(&self) -> bool {
        !matches!(self, PortalError::Rejected { .. })
    }

    /// A short label for metrics and health: the HTTP status, or what went
    /// wrong without one.
    pub fn label(&self) -> String {
        match self {
            PortalError::Timeout(_) => "timeout".into(),
            PortalError::Unreachable(_) => "unreachable".into(),
            PortalError::Malformed { .. } => "malformed".into(),
            other => other.status().to_string(),
        }
    }

    /// What kind of fault of the whole portal this is, for the one log line
    /// and health detail per change.
    pub fn fault(&self) -> &'static str {
        match self {
            PortalError::Unauthorized { .. } => "the token is refused",
            PortalError::Rejected { .. } => "a request is refused",
            PortalError::Server { .. } => "the portal answers with errors",
            PortalError::Timeout(_) => "the portal does not answer in time",
            PortalError::Unreachable(_) => "the portal cannot be reached",
            PortalError::Malformed { .. } => "the portal's answers are malformed",
        }
    }
}

/// The developer API of one Provider Portal.
#[derive(Clone)]
pub struct PortalClient {
    http: reqwest::Client,
    base: Url,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for PortalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// `{"list": [...], "total": N}`.
#[derive(Debug, Deserialize)]
struct DeveloperList {
    list: Vec<DeveloperBody>,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct DeveloperBody {
    id: String,
    #[serde(default)]
    name: String,
    /// Required by the description, yet its newest version lists no such
    /// property: a developer without one is taken as active.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

impl DeveloperBody {
    fn into_developer(self, status: u16) -> Result<Developer, PortalError> {
        let portal_status = match self.status.as_deref() {
            Some("pending") => PortalStatus::Pending,
            Some("active") | None => PortalStatus::Active,
            Some(other) => {
                return Err(PortalError::Malformed {
                    status,
                    detail: format!("unknown developer status {:?}", truncate(other)),
                });
            }
        };
        Ok(Developer {
            id: self.id,
            name: self.name,
            status: portal_status,
            created_at: self.created_at,
        })
    }
}

/// An error body: the description says `{"status", "message"}`, the
/// TypeScript SDK reads `error_msg`; either is accepted.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: Option<String>,
    error_msg: Option<String>,
}

fn truncate(text: &str) -> String {
    let mut text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl PortalClient {
    pub fn new(settings: &ProviderPortalSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            // Answers are small JSON; a redirect would carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot set up the Provider Portal client: {err}"))?;
        Ok(Self {
            http,
            base: settings.base_url.clone(),
            token: settings.token.clone(),
            timeout: settings.timeout,
        })
    }

    /// `<base>/api/developers[/<id>]`, keeping any path the base URL has.
    fn url(&self, developer: Option<&DeveloperId>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "developers"]);
            if let Some(developer) = developer {
                segments.push(developer.as_str());
            }
        }
        url
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, PortalError> {
        request
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| self.transport_error(&err))
    }

    fn transport_error(&self, err: &reqwest::Error) -> PortalError {
        if err.is_timeout() {
            PortalError::Timeout(self.timeout)
        } else {
            // The innermost cause says it best ("Connection refused").
            let mut cause: &dyn std::error::Error = err;
            while let Some(next) = cause.source() {
                cause = next;
            }
            PortalError::Unreachable(truncate(&cause.to_string()))
        }
    }

    /// The error a non-success answer means.
    async fn failure(&self, response: Response) -> PortalError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .ok()
            .and_then(|body| body.message.or(body.error_msg))
            .map(|m| truncate(&m))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                let text = truncate(text.trim());
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text
                }
            });
        let code = status.as_u16();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PortalError::Unauthorized {
                status: code,
                message,
            },
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => PortalError::Server {
                status: code,
                message,
            },
            s if s.is_client_error() => PortalError::Rejected {
                status: code,
                message,
            },
            s if s.is_server_error() => PortalError::Server {
                status: code,
                message,
            },
            _ => PortalError::Malformed {
                status: code,
                detail: format!("unexpected status: {message}"),
            },
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, PortalError> {
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        serde_json::from_slice(&bytes).map_err(|err| PortalError::Malformed {
            status,
            detail: truncate(&err.to_string()),
        })
    }

    /// `POST /api/developers`: creates the developer (`201`).
    pub async fn create_developer(&self, id: &DeveloperId) -> Result<Developer, PortalError> {
        let request = self
            .http
            .post(self.url(None))
            .json(&serde_json::json!({ "developer_id": id.as_str() }));
        let response = self.send(request).await?;
        let status = response.status();
        if !matches!(status, StatusCode::CREATED | StatusCode::OK) {
            return Err(self.failure(response).await);
        }
        let developer = self
            .json::<DeveloperBody>(response)
            .await?
            .into_developer(status.as_u16())?;
        if developer.id != id.as_str() {
            return Err(PortalError::Malformed {
                status: status.as_u16(),
                detail: format!("created developer {:?}", truncate(&developer.id)),
            });
        }
        Ok(developer)
    }

    /// `DELETE /api/developers/{id}`: true if it was deleted (`204`), false
    /// if there was none (`404`, which counts as done).
    pub async fn delete_developer(&self, id: &DeveloperId) -> Result<bool, PortalError> {
        let response = self.send(self.http.delete(self.url(Some(id)))).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(response).await),
        }
    }

    /// One page of `GET /api/developers` (pages count from 1), oldest first.
    pub async fn list_page(
        &self,
        page: u32,
        search: Option<&str>,
    ) -> Result<(Vec<Developer>, u64), PortalError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("page_size", PAGE_SIZE.to_string()),
            ("order_by", "created_at".to_owned()),
            ("direction", "asc".to_owned()),
        ];
        if let Some(search) = search {
            query.push(("search", search.to_owned()));
        }
        let response = self
            .send(self.http.get(self.url(None)).query(&query))
            .await?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(self.failure(response).await);
        }
        let list = self.json::<DeveloperList>(response).await?;
        let developers = list
            .list
            .into_iter()
            .map(|d| d.into_developer(status.as_u16()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((developers, list.total))
    }

    /// Every developer (matching `search`), following the pages until the
    /// total is reached or a page comes back empty.
    pub async fn list_all(&self, search: Option<&str>) -> Result<Vec<Developer>, PortalError> {
        let mut all: Vec<Developer> = Vec::new();
        for page in 1..=MAX_PAGES {
            let (developers, total) = self.list_page(page, search).await?;
            let empty = developers.is_empty();
            all.extend(developers);
            if empty || all.len() as u64 >= total {
                break;
            }
        }
        // A developer created while we paged can shift one onto two pages.
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.dedup_by(|a, b| a.id == b.id);
        Ok(all)
    }

    /// The developer `id`, if the portal has it (by `search`, then an exact
    /// match on the id).
    pub async fn find_developer(&self, id: &DeveloperId) -> Result<Option<Developer>, PortalError> {
        Ok(self
            .list_all(Some(id.as_str()))
            .await?
            .into_iter()
            .find(|d| d.id == id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_are_bounded_and_printable() {
        assert_eq!(truncate("line\r\nbreak"), "linebreak");
        assert!(truncate(&"é".repeat(500)).len() <= MAX_ERROR_TEXT + '…'.len_utf8());
    }

    #[test]
    fn developers_without_a_status_are_active_and_unknown_ones_malformed() {
        let body = |status: Option<&str>| DeveloperBody {
            id: "d".into(),
            name: String::new(),
            status: status.map(str::to_owned),
            created_at: None,
        };
        assert_eq!(
            body(None).into_developer(200).map(|d| d.status),
            Ok(PortalStatus::Active)
        );
        assert_eq!(
            body(Some("pending")).into_developer(200).map(|d| d.status),
            Ok(PortalStatus::Pending)
        );
        assert!(body(Some("banned")).into_developer(200).is_err());
    }
}
