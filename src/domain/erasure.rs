//! Erasing a person on request (GDPR): the marker that replaces their
//! email address and name wherever roster stored them, and how those are
//! found in the text roster keeps (email subjects and bodies, the change
//! log's field values).
//!
//! Addresses are matched case-insensitively (as roster compares them),
//! names exactly; both only as whole words, so that erasing `bob@example.com`
//! leaves `jimbob@example.com` alone and erasing "Al" leaves "Also".

use super::{event::SLUG_FIELD, input::Email};

/// What replaces a person's email address and display name: in the change
/// log (`subject_email`, field values), invitations, and the email outbox.
/// Not an address, so nothing is ever sent to it or matched against it.
pub const ERASED: &str = "[erased]";

/// Fields of the change log whose values are roster's own vocabulary (ids,
/// states, roles, times, counts), never a person's words: a name is not
/// looked for in them, so that erasing someone called "admin" leaves the
/// roles in the log alone. Addresses are looked for everywhere.
const STRUCTURAL_FIELDS: [&str; 12] = [
    SLUG_FIELD,
    "role",
    "state",
    "invitation_id",
    "delivery",
    "expire_time",
    "identity_state",
    "identity_attempts",
    "members",
    "pending_invitations",
    "better_auth_id",
    "logo_url",
];

/// What roster knows of one person that must go: their addresses
/// (case-folded) and display names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Personal {
    emails: Vec<String>,
    names: Vec<String>,
}

impl Personal {
    /// The addresses and names to erase; empty ones are dropped (an empty
    /// string is nobody's).
    pub fn new(
        emails: impl IntoIterator<Item = String>,
        names: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut folded: Vec<String> = emails
            .into_iter()
            .map(|e| Email::fold(&e))
            .filter(|e| !e.is_empty() && e != ERASED)
            .collect();
        folded.sort();
        folded.dedup();
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty() && n != ERASED)
            .collect();
        names.sort();
        names.dedup();
        Self {
            emails: folded,
            names,
        }
    }

    /// The addresses, case-folded.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// Whether `address` is one of theirs (compared case-insensitively).
    pub fn is_email(&self, address: &str) -> bool {
        let folded = Email::fold(address);
        self.emails.contains(&folded)
    }

    /// `text` with each of their addresses and names replaced by
    /// [`ERASED`]; `None` if it holds none of them.
    pub fn redact_text(&self, text: &str) -> Option<String> {
        self.redact(text, true)
    }

    /// A change-log field value with their data replaced: addresses in any
    /// field, names only in fields that can hold a person's words.
    pub fn redact_field(&self, field: &str, value: &str) -> Option<String> {
        self.redact(value, !STRUCTURAL_FIELDS.contains(&field))
    }

    fn redact(&self, text: &str, with_names: bool) -> Option<String> {
        let mut current: Option<String> = None;
        for email in &self.emails {
            let base = current.as_deref().unwrap_or(text);
            if let Some(replaced) = replace_words(base, email, true) {
                current = Some(replaced);
            }
        }
        if with_names {
            for name in &self.names {
                let base = current.as_deref().unwrap_or(text);
                if let Some(replaced) = replace_words(base, name, false) {
                    current = Some(replaced);
                }
            }
        }
        current
    }
}

/// `text` with every whole-word occurrence of `needle` replaced by
/// [`ERASED`] (`folded`: `needle` is lower case and matched
/// case-insensitively); `None` if there is none.
fn replace_words(text: &str, needle: &str, folded: bool) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    let mut previous: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let at_boundary = previous.is_none_or(|p| !p.is_alphanumeric());
        if at_boundary && let Some(len) = match_at(rest, needle, folded) {
            let after = rest[len..].chars().next();
            if after.is_none_or(|a| !a.is_alphanumeric()) {
                out.push_str(ERASED);
                found = true;
                previous = rest[..len].chars().next_back();
                rest = &rest[len..];
                continue;
            }
        }
        out.push(c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    found.then_some(out)
}

/// The length in bytes of the prefix of `text` that is `needle` (compared
/// in lower case if `folded`), if it starts with it.
fn match_at(text: &str, needle: &str, folded: bool) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    if !folded {
        return text.starts_with(needle).then_some(needle.len());
    }
    let mut lowered = String::new();
    for (i, c) in text.char_indices() {
        lowered.extend(c.to_lowercase());
        if lowered.len() >= needle.len() {
            return (lowered == needle).then_some(i + c.len_utf8());
        }
        if !needle.starts_with(&lowered) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Personal {
        Personal::new(
            ["Alice@Example.com".to_owned(), String::new()],
            ["Al".to_owned()],
        )
    }

    #[test]
    fn addresses_are_found_in_any_case_and_names_exactly_as_whole_words() {
        let p = alice();
        assert_eq!(
            p.redact_text("Al (ALICE@example.COM) invited you")
                .as_deref(),
            Some("[erased] ([erased]) invited you")
        );
        // Not inside other words or addresses.
        assert_eq!(p.redact_text("Also malice@example.com, Alps"), None);
        assert_eq!(p.redact_text("al"), None);
        assert_eq!(
            p.redact_text("alice@example.com.").as_deref(),
            Some("[erased].")
        );
        assert!(p.is_email(" alice@EXAMPLE.com"));
        assert!(!p.is_email("bob@example.com"));
    }

    #[test]
    fn names_are_left_alone_in_the_logs_own_vocabulary() {
        let admin = Personal::new(["a@example.com".to_owned()], ["admin".to_owned()]);
        assert_eq!(admin.redact_field("role", "admin"), None);
        assert_eq!(admin.redact_field("name", "admin").as_deref(), Some(ERASED));
        assert_eq!(
            admin.redact_field("role", "a@example.com").as_deref(),
            Some(ERASED)
        );
    }

    #[test]
    fn the_marker_and_empty_values_are_nobodys() {
        let p = Personal::new([ERASED.to_owned(), " ".to_owned()], [String::new()]);
        assert!(p.emails().is_empty());
        assert_eq!(p.redact_text("[erased] anything"), None);
    }

    #[test]
    fn case_folding_that_changes_lengths_keeps_boundaries() {
        // U+0130 lowercases to two characters.
        let p = Personal::new(["i\u{307}x@example.com".to_owned()], []);
        assert_eq!(
            p.redact_text("to \u{130}X@example.com now").as_deref(),
            Some("to [erased] now")
        );
    }
}
