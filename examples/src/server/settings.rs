//! The server's settings, read once at start-up from the command line and
//! the environment.
//!
//! `--port N` wins over `WORKSPACE_PORT`; the default port is 8080. The
//! server always listens on 127.0.0.1. `Debug` never prints a secret or a
//! database URL, which can carry a password.

use std::fmt;

use billing_domain::RowKind;
use provider_stripe::RowReference;

/// The port used when neither `--port` nor `WORKSPACE_PORT` is given.
pub const DEFAULT_PORT: u16 = 8080;

/// An invalid setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{source_name} is {value:?}, which is not a port number; use a number from 0 to 65535")]
    BadPort { source_name: &'static str, value: String },

    #[error("unknown argument {argument:?}; the only option is --port N")]
    UnknownArgument { argument: String },

    #[error("WORKSPACE_BASE_URL is {value:?}; it must start with http:// or https://")]
    BadBaseUrl { value: String },

    #[error(
        "STRIPE_ROW_REFERENCES entry {entry:?} {problem}; write kind=id pairs separated by commas, such as \
         credits=price_123,content=prod_456, with kinds credits, content, project_work or other"
    )]
    BadRowReference { entry: String, problem: &'static str },

    #[error(
        "{present} is set but {missing} is not; set both to use a real account, or neither for the local stand-in"
    )]
    Incomplete { present: &'static str, missing: &'static str },
}

/// A Stripe account. Without one the server runs a local stand-in.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeSettings {
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: String,
    /// `STRIPE_WEBHOOK_SECRET`: the signing secret of the endpoint that
    /// points at `/webhooks/stripe`.
    pub webhook_secret: String,
    /// `STRIPE_API_BASE`: another API base URL, such as a local fake's.
    pub api_base: Option<String>,
    /// `STRIPE_TERMINAL_READERS`: comma-separated reader ids for the Terminal button.
    pub terminal_readers: Vec<String>,
    /// `STRIPE_ROW_REFERENCES`: `kind=id` pairs, such as
    /// `credits=price_123,content=prod_456`. An id starting with `price_` is
    /// a Price, any other a Product.
    pub row_references: Vec<(RowKind, RowReference)>,
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"(redacted)")
            .field("webhook_secret", &"(redacted)")
            .field("api_base", &self.api_base)
            .field("terminal_readers", &self.terminal_readers)
            .field("row_references", &self.row_references)
            .finish()
    }
}

/// A Maksekeskus shop. Without one the server runs a local stand-in.
#[derive(Clone, PartialEq, Eq)]
pub struct MaksekeskusSettings {
    /// `MAKSEKESKUS_SHOP_ID`.
    pub shop_id: String,
    /// `MAKSEKESKUS_SECRET_KEY`: the API password and the MAC key.
    pub secret_key: String,
    /// `MAKSEKESKUS_API_BASE`: `test` (the default), `live`, or a base URL
    /// such as a local fake's `http://127.0.0.1:PORT`.
    pub api_base: Option<String>,
}

impl fmt::Debug for MaksekeskusSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaksekeskusSettings")
            .field("shop_id", &self.shop_id)
            .field("secret_key", &"(redacted)")
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Everything the binary needs to assemble the server.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    /// Where browsers reach the server; `http://127.0.0.1:{port}` unless
    /// `WORKSPACE_BASE_URL` says otherwise (behind a proxy, say).
    pub base_url: Option<String>,
    /// PostgreSQL when set; the in-memory store otherwise.
    pub database_url: Option<String>,
    pub stripe: Option<StripeSettings>,
    pub maksekeskus: Option<MaksekeskusSettings>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field("base_url", &self.base_url)
            .field("database_url", &self.database_url.as_ref().map(|_| "(set)"))
            .field("stripe", &self.stripe)
            .field("maksekeskus", &self.maksekeskus)
            .finish()
    }
}

impl Settings {
    /// Reads `args` (without the program name) and the variables `env` returns.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the argument or variable that is wrong.
    pub fn read(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let mut port = match env("WORKSPACE_PORT") {
            Some(value) => parse_port("WORKSPACE_PORT", &value)?,
            None => DEFAULT_PORT,
        };
        let mut args = args.into_iter();
        while let Some(argument) = args.next() {
            match (argument.as_str(), argument.strip_prefix("--port=")) {
                (_, Some(value)) => port = parse_port("--port", value)?,
                ("--port", None) => port = parse_port("--port", &args.next().unwrap_or_default())?,
                _ => return Err(SettingsError::UnknownArgument { argument }),
            }
        }
        let base_url = non_empty(env("WORKSPACE_BASE_URL")).map(|url| url.trim_end_matches('/').to_owned());
        if let Some(url) = &base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::BadBaseUrl { value: url.clone() });
            }
        }
        let maksekeskus = pair(&env, "MAKSEKESKUS_SHOP_ID", "MAKSEKESKUS_SECRET_KEY")?.map(|(shop_id, secret_key)| {
            MaksekeskusSettings { shop_id, secret_key, api_base: non_empty(env("MAKSEKESKUS_API_BASE")) }
        });
        let stripe = match pair(&env, "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")? {
            Some((secret_key, webhook_secret)) => Some(StripeSettings {
                secret_key,
                webhook_secret,
                api_base: non_empty(env("STRIPE_API_BASE")),
                terminal_readers: list(&env("STRIPE_TERMINAL_READERS").unwrap_or_default())
                    .map(str::to_owned)
                    .collect(),
                row_references: parse_row_references(env("STRIPE_ROW_REFERENCES"))?,
            }),
            None if non_empty(env("STRIPE_ROW_REFERENCES")).is_some() => {
                return Err(SettingsError::Incomplete {
                    present: "STRIPE_ROW_REFERENCES",
                    missing: "STRIPE_SECRET_KEY",
                });
            }
            None => None,
        };
        Ok(Settings { port, base_url, database_url: non_empty(env("DATABASE_URL")), stripe, maksekeskus })
    }

    /// The settings of this process.
    ///
    /// # Errors
    ///
    /// As [`Settings::read`].
    pub fn from_process() -> Result<Settings, SettingsError> {
        Settings::read(std::env::args().skip(1), |name| std::env::var(name).ok())
    }
}

/// Returns the non-empty, trimmed items of a comma-separated list.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// Reads `STRIPE_ROW_REFERENCES`, such as `credits=price_123,content=prod_456`.
fn parse_row_references(value: Option<String>) -> Result<Vec<(RowKind, RowReference)>, SettingsError> {
    let value = value.unwrap_or_default();
    let mut references: Vec<(RowKind, RowReference)> = Vec::new();
    for entry in list(&value) {
        let bad = |problem| SettingsError::BadRowReference { entry: entry.to_owned(), problem };
        let (kind, id) = entry.split_once('=').ok_or_else(|| bad("has no `=`"))?;
        let kind = match kind.trim() {
            "credits" => RowKind::Credits,
            "content" => RowKind::Content,
            "project_work" => RowKind::ProjectWork,
            "other" => RowKind::Other,
            _ => return Err(bad("names no row kind")),
        };
        let id = id.trim();
        if id.is_empty() {
            return Err(bad("has no id"));
        }
        if references.iter().any(|(seen, _)| *seen == kind) {
            return Err(bad("repeats a kind"));
        }
        let reference = if id.starts_with("price_") {
            RowReference::Price(id.to_owned())
        } else {
            RowReference::Product(id.to_owned())
        };
        references.push((kind, reference));
    }
    Ok(references)
}

fn parse_port(source_name: &'static str, value: &str) -> Result<u16, SettingsError> {
    value.trim().parse().map_err(|_| SettingsError::BadPort { source_name, value: value.to_owned() })
}

/// Both variables, neither, or an error naming the missing one.
fn pair(
    env: &impl Fn(&str) -> Option<String>,
    first: &'static str,
    second: &'static str,
) -> Result<Option<(String, String)>, SettingsError> {
    match (non_empty(env(first)), non_empty(env(second))) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(SettingsError::Incomplete { present: first, missing: second }),
        (None, Some(_)) => Err(SettingsError::Incomplete { present: second, missing: first }),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::read(args.iter().map(|arg| (*arg).to_owned()), |name| env.get(name).cloned())
    }

    #[test]
    fn defaults_to_port_8080_and_memory() {
        let settings = read(&[], &[]).unwrap();

        assert_eq!(settings.port, DEFAULT_PORT);
        assert_eq!(settings.database_url, None);
    }

    #[test]
    fn flag_wins_over_environment() {
        assert_eq!(read(&["--port", "9000"], &[("WORKSPACE_PORT", "9100")]).unwrap().port, 9000);
        assert_eq!(read(&["--port=9001"], &[]).unwrap().port, 9001);
        assert_eq!(read(&[], &[("WORKSPACE_PORT", "9100")]).unwrap().port, 9100);
    }

    #[test]
    fn bad_port_names_its_source() {
        let error = read(&[], &[("WORKSPACE_PORT", "eighty")]).unwrap_err();

        assert_eq!(error, SettingsError::BadPort { source_name: "WORKSPACE_PORT", value: "eighty".into() });
    }

    #[test]
    fn unknown_argument_is_refused() {
        assert!(matches!(read(&["--verbose"], &[]), Err(SettingsError::UnknownArgument { .. })));
    }

    #[test]
    fn maksekeskus_needs_shop_and_key_together() {
        let shop_only = read(&[], &[("MAKSEKESKUS_SHOP_ID", "shop")]).unwrap_err();
        let both = read(&[], &[("MAKSEKESKUS_SHOP_ID", "shop"), ("MAKSEKESKUS_SECRET_KEY", "key")]).unwrap();

        assert_eq!(
            shop_only,
            SettingsError::Incomplete { present: "MAKSEKESKUS_SHOP_ID", missing: "MAKSEKESKUS_SECRET_KEY" }
        );
        assert_eq!(both.maksekeskus.unwrap().shop_id, "shop");
        assert_eq!(read(&[], &[]).unwrap().maksekeskus, None);
    }

    #[test]
    fn stripe_reads_keys_base_and_readers() {
        let settings = read(
            &[],
            &[
                ("STRIPE_SECRET_KEY", "sk_test_x"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_y"),
                ("STRIPE_API_BASE", "http://127.0.0.1:12111/"),
                ("STRIPE_TERMINAL_READERS", "tmr_a, tmr_b,"),
            ],
        )
        .unwrap();
        let stripe = settings.stripe.clone().unwrap();

        assert_eq!(stripe.api_base.as_deref(), Some("http://127.0.0.1:12111/"));
        assert_eq!(stripe.terminal_readers, ["tmr_a", "tmr_b"]);
        assert!(!format!("{settings:?}").contains("sk_test_x"));
        assert!(!format!("{settings:?}").contains("whsec_y"));
    }

    #[test]
    fn stripe_row_references_parse_kinds() {
        let keys = [("STRIPE_SECRET_KEY", "sk_test_x"), ("STRIPE_WEBHOOK_SECRET", "whsec_y")];
        let with = |value: &'static str| {
            let mut env = keys.to_vec();
            env.push(("STRIPE_ROW_REFERENCES", value));
            read(&[], &env)
        };

        let settings = with(" credits=price_123 , project_work=prod_work,").unwrap();
        assert_eq!(
            settings.stripe.unwrap().row_references,
            [
                (RowKind::Credits, RowReference::Price("price_123".into())),
                (RowKind::ProjectWork, RowReference::Product("prod_work".into()))
            ]
        );
        assert_eq!(read(&[], &keys).unwrap().stripe.unwrap().row_references, []);
        assert_eq!(
            read(&[], &[("STRIPE_ROW_REFERENCES", "credits=price_123")]).unwrap_err(),
            SettingsError::Incomplete { present: "STRIPE_ROW_REFERENCES", missing: "STRIPE_SECRET_KEY" },
            "the stand-in has no catalogue, so references without an account are an error, not ignored"
        );

        for (value, problem) in [
            ("credits", "has no `=`"),
            ("hours=prod_1", "names no row kind"),
            ("content=", "has no id"),
            ("other=prod_1,other=prod_2", "repeats a kind"),
        ] {
            let error = with(value).unwrap_err();
            assert!(matches!(&error, SettingsError::BadRowReference { problem: p, .. } if *p == problem), "{error}");
            assert!(error.to_string().contains("credits=price_123,content=prod_456"), "{error}");
        }
    }

    #[test]
    fn stripe_needs_both_secrets() {
        let error = read(&[], &[("STRIPE_WEBHOOK_SECRET", "whsec_y")]).unwrap_err();

        assert_eq!(error, SettingsError::Incomplete { present: "STRIPE_WEBHOOK_SECRET", missing: "STRIPE_SECRET_KEY" });
    }

    #[test]
    fn debug_hides_the_maksekeskus_key() {
        let settings = read(&[], &[("MAKSEKESKUS_SHOP_ID", "shop"), ("MAKSEKESKUS_SECRET_KEY", "hunter2")]).unwrap();

        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn debug_hides_the_database_url() {
        let settings = read(&[], &[("DATABASE_URL", "postgres://user:hunter2@localhost/db")]).unwrap();

        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
