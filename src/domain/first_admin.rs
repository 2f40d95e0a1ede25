use serde::{Deserialize, Serialize};

/// Who a new tenant's first admin is: the subject an identity provider
/// names them by (1 to 255 visible ASCII characters) and their e-mail
/// address (visible ASCII, one '@').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, try_from = "RawFirstAdmin")]
pub struct FirstAdmin {
    #[schema(min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    subject: String,
    #[schema(min_length = 3, max_length = 254, pattern = "^[!-?A-~]+@[!-?A-~]+$")]
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirstAdmin {
    subject: String,
    email: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidFirstAdmin {
    #[error("admin.subject must be 1 to 255 visible ASCII characters")]
    Subject,
    #[error("admin.email must be an e-mail address (name@domain, at most 254 characters)")]
    Email,
}

impl FirstAdmin {
    pub fn parse(subject: &str, email: &str) -> Result<Self, InvalidFirstAdmin> {
        let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if !(1..=255).contains(&subject.len()) || !visible(subject) {
            return Err(InvalidFirstAdmin::Subject);
        }
        // Visible ASCII with one '@' between two non-empty parts: an
        // address a person can read back, and nothing a terminal acts on.
        let mut parts = email.split('@');
        let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let well_formed = parts.next().is_none()
            && !local.is_empty()
            && !domain.is_empty()
            && email.len() <= 254
            && visible(email);
        if !well_formed {
            return Err(InvalidFirstAdmin::Email);
        }
        Ok(Self {
            subject: subject.to_string(),
            email: email.to_string(),
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn email(&self) -> &str {
        &self.email
    }
}

impl TryFrom<RawFirstAdmin> for FirstAdmin {
    type Error = InvalidFirstAdmin;

    fn try_from(raw: RawFirstAdmin) -> Result<Self, Self::Error> {
        FirstAdmin::parse(&raw.subject, &raw.email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_admin_has_a_visible_subject_and_one_at_sign_in_their_email() {
        assert!(FirstAdmin::parse("okta|00u1", "ana@acme.example").is_ok());
        for (subject, email) in [
            ("", "ana@acme.example"),
            ("has space", "ana@acme.example"),
            (&*"s".repeat(256), "ana@acme.example"),
            ("ana", "no-at-sign"),
            ("ana", "two@@acme.example"),
            ("ana", "@acme.example"),
            ("ana", "ana@"),
            ("ana", "a na@acme.example"),
            ("ana", "ana\u{7}@acme.example"),
        ] {
            assert!(
                FirstAdmin::parse(subject, email).is_err(),
                "{subject} {email}"
            );
        }
    }
}
