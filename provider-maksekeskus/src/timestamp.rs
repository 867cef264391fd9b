//! Timestamps as Maksekeskus writes them: `2016-04-11T14:29:42+0000`, an
//! ISO 8601 form whose offset has no colon, so RFC 3339 parsers reject it.

use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// `2016-04-11T14:29:42+0000`.
pub(crate) const MAKSEKESKUS_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]");

/// Parses the Maksekeskus form, or RFC 3339 as a fallback.
pub(crate) fn parse(text: &str) -> Result<OffsetDateTime, TimestampError> {
    OffsetDateTime::parse(text, MAKSEKESKUS_FORMAT)
        .or_else(|_| OffsetDateTime::parse(text, &Rfc3339))
        .map_err(|_| TimestampError { value: text.to_owned() })
}

/// A timestamp in neither accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {value:?} is neither YYYY-MM-DDThh:mm:ss+hhmm nor RFC 3339")]
pub struct TimestampError {
    pub value: String,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn parses_offset_without_colon() {
        assert_eq!(parse("2016-04-11T14:29:42+0000").unwrap(), datetime!(2016-04-11 14:29:42 UTC));
        assert_eq!(parse("2016-04-11T17:29:42+0300").unwrap(), datetime!(2016-04-11 14:29:42 UTC));
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse("2016-04-11T14:29:42Z").unwrap(), datetime!(2016-04-11 14:29:42 UTC));
    }

    #[test]
    fn rejects_other_text() {
        assert_eq!(parse("yesterday").unwrap_err().value, "yesterday");
        assert!(parse("2016-04-11").is_err());
    }
}
