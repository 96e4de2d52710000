//! The firm's billing settings, read from the `billing` section of the rules folder: its
//! country, the tax table, the default rounding policy and the EU reverse charge.
//!
//! ```yaml
//! billing:
//!   firm_country: IT            # ISO 3166-1 alpha-2; required with `taxes`
//!   rounding: per_line          # per_line (the default) or per_document
//!   reverse_charge: true        # false charges VAT to EU businesses abroad instead
//!   taxes:                      # rates in percent by the client's country
//!     IT: { eu: true, default: 22, categories: { training: 10 } }
//!     DE: { eu: true, default: 19 }
//!     US: { default: 0 }
//! ```
//!
//! One file of the folder contains the section. Without it every setting has its default and
//! there is no tax table, so only contract lines with their own tax rate can be priced. The
//! client's and the contract's `rounding` billing rule beats the firm's default.
//!
//! [`load_dir`] and [`compile_sources`] report every problem with its file, line and column.
//! The checked settings are stored in the database as canonical JSON ([`BillingSettings::to_json`])
//! so that every command on a database bills with the settings the server installed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use steward_rules::Diagnostic;

use crate::invoice::Rounding;
use crate::issue::InputError;
use crate::rules::BillingRules;
use crate::tax::{CountryTaxes, TaxTable};

/// The firm's billing settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingSettings {
    /// The tax table, [`TaxTable::unconfigured`] when the folder gives none.
    pub taxes: TaxTable,
    /// Rounding policy of invoices whose client and contract rules name none.
    pub rounding: Rounding,
    /// The file that contains the section, when one does.
    pub origin: Option<String>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            taxes: TaxTable::unconfigured(),
            rounding: Rounding::PerLine,
            origin: None,
        }
    }
}

impl BillingSettings {
    /// Returns the billing rules every contract starts from before its client's and its
    /// own rules apply.
    pub fn default_rules(&self) -> BillingRules {
        BillingRules {
            rounding: self.rounding,
            ..BillingRules::default()
        }
    }

    /// Writes the settings as the canonical JSON that is stored and read back by
    /// [`BillingSettings::from_json`].
    pub fn to_json(&self) -> Value {
        let mut taxes = Map::new();
        for code in self.taxes.countries() {
            let Some(country) = self.taxes.country(code) else {
                continue;
            };
            let categories: Map<String, Value> = country
                .categories
                .iter()
                .map(|(name, rate)| (name.clone(), Value::String(rate.to_string())))
                .collect();
            taxes.insert(
                code.to_string(),
                json!({
                    "eu": country.eu_member,
                    "default": country.default_rate.to_string(),
                    "categories": categories,
                }),
            );
        }
        let firm_country = (!self.taxes.is_unconfigured()).then(|| self.taxes.firm_country());
        json!({
            "firm_country": firm_country,
            "rounding": self.rounding.as_str(),
            "reverse_charge": self.taxes.reverse_charge(),
            "taxes": taxes,
        })
    }

    /// Reads settings stored by [`BillingSettings::to_json`].
    pub fn from_json(value: &Value, origin: Option<String>) -> Result<BillingSettings, InputError> {
        let invalid = |message: String| InputError::new("stored billing settings", message);
        let rounding = match value.get("rounding").and_then(Value::as_str) {
            None => Rounding::PerLine,
            Some(name) => {
                Rounding::parse(name).ok_or_else(|| invalid(format!("`rounding` is `{name}`")))?
            }
        };
        let reverse_charge = value
            .get("reverse_charge")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let countries = value.get("taxes").and_then(Value::as_object);
        let taxes = match (value.get("firm_country").and_then(Value::as_str), countries) {
            (Some(firm), Some(countries)) if !countries.is_empty() => {
                TaxTable::from_json(&json!({"firm_country": firm, "countries": countries}))?
            }
            _ => TaxTable::unconfigured(),
        };
        Ok(BillingSettings {
            taxes: taxes.with_reverse_charge(reverse_charge),
            rounding,
            origin,
        })
    }

    /// Returns the SHA-256 of the canonical JSON, so that an unchanged section is stored once.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_json().to_string().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Reads every `.yaml` and `.yml` file under `dir` and compiles the `billing` section.
pub fn load_dir(dir: &Path) -> Result<BillingSettings, Vec<Diagnostic>> {
    let sources = steward_rules::check::read_sources(dir)?;
    let (settings, diagnostics) = compile_sources(&sources);
    if diagnostics.is_empty() {
        Ok(settings)
    } else {
        Err(diagnostics)
    }
}

/// The parts of a rules-folder file that billing reads. The other sections belong to other
/// loaders, which report their problems.
#[derive(Deserialize)]
struct BillingFile {
    #[serde(default)]
    billing: Option<Spanned<BillingSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BillingSpec {
    #[serde(default)]
    firm_country: Option<Spanned<String>>,
    #[serde(default)]
    rounding: Option<Spanned<String>>,
    #[serde(default)]
    reverse_charge: Option<Spanned<bool>>,
    #[serde(default)]
    taxes: Option<Spanned<BTreeMap<String, Spanned<CountrySpec>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountrySpec {
    #[serde(default)]
    eu: Option<bool>,
    default: Option<Spanned<Value>>,
    #[serde(default)]
    categories: BTreeMap<String, Spanned<Value>>,
}

/// Compiles the `billing` section of files given as (name, text). Returns the settings,
/// defaults when no file has the section, and every problem found.
pub fn compile_sources(sources: &[(String, String)]) -> (BillingSettings, Vec<Diagnostic>) {
    let mut found: Option<(BillingSettings, String)> = None;
    let mut diagnostics = Vec::new();
    for (file, text) in sources {
        if !text.lines().any(|line| line.starts_with("billing:")) {
            continue;
        }
        let mut checker = Checker {
            file,
            diagnostics: Vec::new(),
        };
        let parsed = match serde_saphyr::from_str::<BillingFile>(text) {
            Ok(parsed) => parsed,
            Err(error) => {
                checker.parse_error(&error);
                diagnostics.append(&mut checker.diagnostics);
                continue;
            }
        };
        let Some(section) = parsed.billing else {
            continue;
        };
        let at = section.referenced;
        let settings = checker.settings(section.value, &at);
        if let Some((_, first)) = &found {
            checker.error(
                &at,
                format!(
                    "the billing settings are already set in {first}; keep one `billing` section"
                ),
            );
        } else if let Some(mut settings) = settings.filter(|_| checker.diagnostics.is_empty()) {
            settings.origin = Some(file.clone());
            found = Some((settings, file.clone()));
        }
        diagnostics.append(&mut checker.diagnostics);
    }
    diagnostics.sort();
    let settings = found.map(|(settings, _)| settings).unwrap_or_default();
    (settings, diagnostics)
}

struct Checker<'a> {
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(self.file, at, message));
    }

    fn parse_error(&mut self, error: &serde_saphyr::Error) {
        let mut diagnostic = Diagnostic::from_parse_error(self.file, error);
        diagnostic.message = format!("in the billing section: {}", diagnostic.message);
        self.diagnostics.push(diagnostic);
    }

    fn settings(&mut self, spec: BillingSpec, at: &Location) -> Option<BillingSettings> {
        let before = self.diagnostics.len();
        let rounding = match &spec.rounding {
            None => Rounding::PerLine,
            Some(name) => Rounding::parse(&name.value).unwrap_or_else(|| {
                self.error(
                    &name.referenced,
                    format!(
                        "`rounding` is `{}`; write per_line or per_document",
                        name.value
                    ),
                );
                Rounding::PerLine
            }),
        };
        let reverse_charge = spec.reverse_charge.as_ref().is_none_or(|flag| flag.value);
        let taxes = match spec.taxes {
            None => {
                if let Some(firm) = &spec.firm_country {
                    self.error(
                        &firm.referenced,
                        "`firm_country` is set but `taxes` is missing; add the tax rates of the \
                         firm's country and its clients' countries under `taxes`",
                    );
                }
                TaxTable::unconfigured()
            }
            Some(taxes) => self.tax_table(spec.firm_country, taxes, at),
        };
        (self.diagnostics.len() == before).then(|| BillingSettings {
            taxes: taxes.with_reverse_charge(reverse_charge),
            rounding,
            origin: None,
        })
    }

    fn tax_table(
        &mut self,
        firm_country: Option<Spanned<String>>,
        taxes: Spanned<BTreeMap<String, Spanned<CountrySpec>>>,
        at: &Location,
    ) -> TaxTable {
        let Some(firm) = firm_country else {
            self.error(
                at,
                "`taxes` needs `firm_country`, the firm's own country such as IT, to tell which \
                 clients are abroad",
            );
            return TaxTable::unconfigured();
        };
        if taxes.value.is_empty() {
            self.error(
                &taxes.referenced,
                "`taxes` lists no country; add at least the firm's own, such as `IT: { eu: true, \
                 default: 22 }`",
            );
            return TaxTable::unconfigured();
        }
        let before = self.diagnostics.len();
        let mut countries = BTreeMap::new();
        for (code, country) in taxes.value {
            if let Some(parsed) = self.country(&code, country) {
                countries.insert(code, parsed);
            }
        }
        if self.diagnostics.len() > before {
            return TaxTable::unconfigured();
        }
        match TaxTable::new(&firm.value, countries) {
            Ok(table) => table,
            Err(error) => {
                let at = if error.message.contains("firm's country") {
                    firm.referenced
                } else {
                    taxes.referenced
                };
                self.error(&at, format!("`taxes`: {}", error.message));
                TaxTable::unconfigured()
            }
        }
    }

    fn country(&mut self, code: &str, spec: Spanned<CountrySpec>) -> Option<CountryTaxes> {
        let at = spec.referenced;
        let spec = spec.value;
        let Some(default) = spec.default else {
            self.error(
                &at,
                format!(
                    "`taxes.{code}` has no `default` rate; give the country's standard rate in \
                     percent, such as `default: 20`"
                ),
            );
            return None;
        };
        let default_rate = self.rate(&format!("taxes.{code}.default"), &default)?;
        let mut categories = BTreeMap::new();
        for (category, rate) in &spec.categories {
            let path = format!("taxes.{code}.categories.{category}");
            categories.insert(category.clone(), self.rate(&path, rate)?);
        }
        Some(CountryTaxes {
            eu_member: spec.eu.unwrap_or(false),
            default_rate,
            categories,
        })
    }

    fn rate(&mut self, path: &str, value: &Spanned<Value>) -> Option<rust_decimal::Decimal> {
        match steward_domain::value::decimal(&value.value) {
            Ok(rate)
                if (rust_decimal::Decimal::ZERO..=rust_decimal::Decimal::ONE_HUNDRED)
                    .contains(&rate) =>
            {
                Some(rate)
            }
            Ok(rate) => {
                self.error(
                    &value.referenced,
                    format!("`{path}` is {rate}; a tax rate is a percentage from 0 to 100"),
                );
                None
            }
            Err(problem) => {
                self.error(&value.referenced, format!("`{path}`: {problem}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Client;
    use crate::tax::{DEFAULT_CATEGORY, TaxRate};
    use rust_decimal_macros::dec;

    fn compile(files: &[(&str, &str)]) -> (BillingSettings, Vec<Diagnostic>) {
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        compile_sources(&sources)
    }

    const SECTION: &str = "\
rules: []
billing:
  firm_country: it
  rounding: per_document
  taxes:
    IT: { eu: true, default: 22, categories: { training: \"10\" } }
    DE: { eu: true, default: 19 }
    CH: { default: 8.1 }
";

    fn client(country: &str) -> Client {
        Client {
            id: "c1".into(),
            country: Some(country.into()),
            is_business: true,
        }
    }

    #[test]
    fn section_gives_taxes_and_rounding() {
        let (settings, diagnostics) = compile(&[("billing.yaml", SECTION)]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(settings.rounding, Rounding::PerDocument);
        assert_eq!(settings.origin.as_deref(), Some("billing.yaml"));
        assert_eq!(settings.taxes.firm_country(), "IT");
        let italy = settings.taxes.rate(&client("IT"), "training").unwrap();
        assert_eq!(italy, TaxRate::standard(dec!(10)));
        let swiss = settings
            .taxes
            .rate(&client("CH"), DEFAULT_CATEGORY)
            .unwrap();
        assert_eq!(swiss, TaxRate::standard(dec!(8.1)));
        assert!(
            settings
                .taxes
                .rate(&client("DE"), DEFAULT_CATEGORY)
                .unwrap()
                .reverse_charge
        );
    }

    #[test]
    fn stored_json_reads_back_the_same() {
        let (settings, _) = compile(&[("billing.yaml", SECTION)]);
        let stored = settings.to_json();
        let back = BillingSettings::from_json(&stored, Some("billing.yaml".into())).unwrap();
        assert_eq!(back, settings);
        assert_eq!(back.hash(), settings.hash());

        let defaults = BillingSettings::default();
        let back = BillingSettings::from_json(&defaults.to_json(), None).unwrap();
        assert_eq!(back, defaults);
    }

    #[test]
    fn no_section_gives_the_defaults() {
        let (settings, diagnostics) = compile(&[("rules.yaml", "rules: []\n")]);
        assert!(diagnostics.is_empty());
        assert_eq!(settings, BillingSettings::default());
        assert!(settings.taxes.is_unconfigured());
    }

    #[test]
    fn reverse_charge_off_charges_local_vat() {
        let text = SECTION.replace("  rounding: per_document\n", "  reverse_charge: false\n");
        let (settings, diagnostics) = compile(&[("billing.yaml", &text)]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let germany = settings
            .taxes
            .rate(&client("DE"), DEFAULT_CATEGORY)
            .unwrap();
        assert_eq!(germany, TaxRate::standard(dec!(19)));
    }

    #[test]
    fn problems_name_file_line_and_fix() {
        let cases = [
            (
                "billing:\n  rounding: per_invoice\n",
                2,
                "`rounding` is `per_invoice`; write per_line or per_document",
            ),
            (
                "billing:\n  taxes:\n    IT: { default: 22 }\n",
                2,
                "`taxes` needs `firm_country`",
            ),
            (
                "billing:\n  firm_country: FR\n  taxes:\n    IT: { default: 22 }\n",
                2,
                "the firm's country `FR` has no entry",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { eu: true }\n",
                4,
                "`taxes.IT` has no `default` rate",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { default: 122 }\n",
                4,
                "`taxes.IT.default` is 122",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT:\n      default: 22\n      \
                 categories: { training: ten }\n",
                6,
                "`taxes.IT.categories.training`: `ten` is not a decimal number",
            ),
            (
                "billing:\n  firm_country: IT\n",
                2,
                "`firm_country` is set but `taxes` is missing",
            ),
            ("billing:\n  currency: EUR\n", 2, "unknown field `currency`"),
        ];
        for (text, line, expected) in cases {
            let (settings, diagnostics) = compile(&[("bad.yaml", text)]);
            assert_eq!(diagnostics.len(), 1, "{text}: {diagnostics:?}");
            let diagnostic = &diagnostics[0];
            assert_eq!(diagnostic.file, "bad.yaml");
            assert_eq!(diagnostic.line, line, "{text}: {diagnostic}");
            assert!(
                diagnostic.message.contains(expected),
                "{text}: `{}` does not mention {expected}",
                diagnostic.message
            );
            assert_eq!(
                settings,
                BillingSettings::default(),
                "a bad section sets nothing"
            );
        }
    }

    #[test]
    fn second_section_is_rejected() {
        let (settings, diagnostics) = compile(&[
            ("a.yaml", SECTION),
            ("b.yaml", "billing:\n  rounding: per_line\n"),
        ]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].file, "b.yaml");
        assert!(diagnostics[0].message.contains("already set in a.yaml"));
        assert_eq!(
            settings.rounding,
            Rounding::PerDocument,
            "the first section stays"
        );
    }
}
