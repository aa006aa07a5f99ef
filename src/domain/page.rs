//! Keyset pagination: a page token is an opaque encoding of the last key
//! returned and of the filters it was issued for. A token used with other
//! filters is refused, rather than silently skipping or repeating rows.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::FieldViolation;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows strictly after this key, in key order.
    pub after: Option<Uuid>,
    pub size: u64,
    /// The filters this listing uses, to bind the next token to them.
    filters: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Last key of the previous page.
    a: Uuid,
    /// The filters the token was issued for.
    f: String,
}

impl PageRequest {
    /// Parses `page_size` and `page_token` for a listing with the given
    /// `filters` (any string that changes when the filters change).
    pub fn parse(
        page_size: i32,
        page_token: &str,
        filters: String,
    ) -> Result<Self, FieldViolation> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                return Err(FieldViolation::new("page_size", "must not be negative"));
            }
            n => u64::from(n.unsigned_abs()).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let token = URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Token>(&bytes).ok())
                .ok_or_else(|| {
                    FieldViolation::new("page_token", "is not a token this listing issued")
                })?;
            if token.f != filters {
                return Err(FieldViolation::new(
                    "page_token",
                    "was issued for different filters; start again without a token",
                ));
            }
            Some(token.a)
        };
        Ok(Self {
            after,
            size,
            filters,
        })
    }

    /// The same request with its page size bounded by `max`.
    pub fn capped(self, max: u64) -> Self {
        Self {
            size: self.size.min(max),
            ..self
        }
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts the fetched rows to the page and makes the token for the next one.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Uuid) -> Page<T> {
        let limit = usize::try_from(self.size).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| {
                let token = Token {
                    a: key(last),
                    f: self.filters.clone(),
                };
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
            })
        } else {
            None
        };
        Page {
            items: rows,
            next_page_token: next_page_token.unwrap_or_default(),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_page_token: self.next_page_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_clamp() {
        let parse = |n| PageRequest::parse(n, "", String::new()).map(|p| p.size);
        assert_eq!(parse(0), Ok(50));
        assert_eq!(parse(7), Ok(7));
        assert_eq!(parse(10_000), Ok(500));
        assert!(parse(-1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_filters() {
        let request = PageRequest::parse(2, "", "role=admin".into()).ok();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = request.map(|r| r.finish(ids.clone(), |id| *id));
        let token = page.map(|p| p.next_page_token).unwrap_or_default();
        assert!(!token.is_empty());
        let next = PageRequest::parse(2, &token, "role=admin".into());
        assert_eq!(next.map(|r| r.after), Ok(Some(ids[1])));
        assert!(PageRequest::parse(2, &token, "role=member".into()).is_err());
        assert!(PageRequest::parse(2, "garbage!", "role=admin".into()).is_err());
    }
}

/// What `ListMembers` filters on.
#[derive(Debug, Default)]
pub struct MemberFilter {
    pub role: Option<super::model::Role>,
    pub search: Option<super::input::SearchPrefix>,
}
