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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use steward_rules::Diagnostic;

use crate::invoice::Rounding;
use crate::issue::InputError;
use crate::rules::BillingRules;
use crate::tax::{CountryTaxes, TaxTable};
use crate::yaml::Node;

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
    billing: Option<Spanned<Node>>,
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
        if matches!(section.value, Node::Scalar(Value::Null)) {
            continue;
        }
        let at = section.referenced;
        let settings = checker.settings(&section);
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

/// The keys of the `billing` section.
const SECTION_KEYS: &str = "firm_country, rounding, reverse_charge, taxes";
/// The keys of one country under `billing.taxes`.
const COUNTRY_KEYS: &str = "eu, default, categories";

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

    /// Returns the entries of a mapping, or reports what `path` should look like.
    fn mapping<'n>(
        &mut self,
        node: &'n Spanned<Node>,
        path: &str,
        example: &str,
    ) -> Option<&'n [(Spanned<String>, Spanned<Node>)]> {
        match &node.value {
            Node::Mapping(entries) => Some(entries),
            other => {
                self.error(
                    &node.referenced,
                    format!(
                        "`{path}` is {}, not a mapping; write it like `{example}`",
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    fn unknown_key(&mut self, key: &Spanned<String>, path: &str, expected: &str) {
        self.error(
            &key.referenced,
            format!(
                "unknown field `{}` in `{path}`; expected one of {expected}",
                key.value
            ),
        );
    }

    /// Reads `true` or `false`.
    fn flag(&mut self, node: &Spanned<Node>, path: &str) -> Option<bool> {
        match &node.value {
            Node::Scalar(Value::Bool(flag)) => Some(*flag),
            other => {
                self.error(
                    &node.referenced,
                    format!(
                        "`{path}` is {}, not a boolean; write true or false",
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    /// Reads an ISO 3166-1 alpha-2 country code, returned upper case. `place` is the field
    /// that contains the code, or the mapping whose key it is.
    fn country_code(&mut self, text: &str, at: &Location, place: &str) -> Option<String> {
        let upper = text.trim().to_ascii_uppercase();
        if upper.len() == 2 && upper.chars().all(|c| c.is_ascii_alphabetic()) {
            return Some(upper);
        }
        let subject = if place == "billing.firm_country" {
            format!("`{place}` is `{text}`,")
        } else {
            format!("key `{text}` of `{place}` is")
        };
        self.error(
            at,
            format!(
                "{subject} not an ISO 3166-1 alpha-2 country code; write two letters such as IT"
            ),
        );
        None
    }

    fn settings(&mut self, section: &Spanned<Node>) -> Option<BillingSettings> {
        let before = self.diagnostics.len();
        let entries = self.mapping(section, "billing", "rounding: per_line")?;
        let mut firm_country: Option<(String, Location)> = None;
        let mut firm_country_given = false;
        let mut rounding = Rounding::PerLine;
        let mut reverse_charge = true;
        let mut taxes: Option<&Spanned<Node>> = None;
        for (key, value) in entries {
            match key.value.as_str() {
                "firm_country" => {
                    firm_country_given = true;
                    let path = "billing.firm_country";
                    let code = match &value.value {
                        Node::Scalar(Value::String(text)) => {
                            self.country_code(text, &value.referenced, path)
                        }
                        other => {
                            let text = other.describe();
                            self.error(
                                &value.referenced,
                                format!("`{path}` is {text}, not a country code; write two letters such as IT"),
                            );
                            None
                        }
                    };
                    if let Some(code) = code {
                        firm_country = Some((code, value.referenced));
                    }
                }
                "rounding" => {
                    let parsed = match &value.value {
                        Node::Scalar(Value::String(name)) => Rounding::parse(name),
                        _ => None,
                    };
                    match parsed {
                        Some(parsed) => rounding = parsed,
                        None => self.error(
                            &value.referenced,
                            format!(
                                "`billing.rounding` is {}; write per_line or per_document",
                                value.value.describe()
                            ),
                        ),
                    }
                }
                "reverse_charge" => {
                    if let Some(flag) = self.flag(value, "billing.reverse_charge") {
                        reverse_charge = flag;
                    }
                }
                "taxes" => taxes = Some(value),
                _ => self.unknown_key(key, "billing", SECTION_KEYS),
            }
        }
        let table = match taxes {
            None => {
                if let Some((_, at)) = &firm_country {
                    self.error(
                        at,
                        "`billing.firm_country` is set but `billing.taxes` is missing; add the \
                         tax rates of the firm's country and its clients' countries under `taxes`",
                    );
                }
                TaxTable::unconfigured()
            }
            Some(taxes) => {
                let table = self.tax_table(firm_country, taxes);
                if !firm_country_given {
                    self.error(
                        &section.referenced,
                        "`billing.taxes` needs `billing.firm_country`, the firm's own country \
                         such as IT, to tell which clients are abroad",
                    );
                }
                table
            }
        };
        (self.diagnostics.len() == before).then(|| BillingSettings {
            taxes: table.with_reverse_charge(reverse_charge),
            rounding,
            origin: None,
        })
    }

    fn tax_table(
        &mut self,
        firm_country: Option<(String, Location)>,
        taxes: &Spanned<Node>,
    ) -> TaxTable {
        let before = self.diagnostics.len();
        let mut countries = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let example = "IT: { eu: true, default: 22 }";
        if let Some(entries) = self.mapping(taxes, "billing.taxes", example) {
            if entries.is_empty() {
                self.error(
                    &taxes.referenced,
                    format!("`billing.taxes` lists no country; add at least the firm's own, such as `{example}`"),
                );
            }
            for (key, value) in entries {
                let path = format!("billing.taxes.{}", key.value);
                let Some(code) = self.country_code(&key.value, &key.referenced, "billing.taxes")
                else {
                    continue;
                };
                let parsed = self.country(&path, value);
                if !seen.insert(code.clone()) {
                    self.error(
                        &key.referenced,
                        format!("`{path}` repeats country {code}; keep one entry per country"),
                    );
                } else if let Some(parsed) = parsed {
                    countries.insert(code, parsed);
                }
            }
        }
        let Some((firm, firm_at)) = firm_country else {
            return TaxTable::unconfigured();
        };
        if self.diagnostics.len() > before {
            return TaxTable::unconfigured();
        }
        match TaxTable::new(&firm, countries) {
            Ok(table) => table,
            Err(error) => {
                self.error(&firm_at, format!("`billing.taxes`: {}", error.message));
                TaxTable::unconfigured()
            }
        }
    }

    fn country(&mut self, path: &str, node: &Spanned<Node>) -> Option<CountryTaxes> {
        let entries = self.mapping(node, path, "{ eu: true, default: 22 }")?;
        let before = self.diagnostics.len();
        let mut eu_member = false;
        let mut default_rate = None;
        let mut categories = BTreeMap::new();
        for (key, value) in entries {
            match key.value.as_str() {
                "eu" => eu_member = self.flag(value, &format!("{path}.eu")).unwrap_or(false),
                "default" => default_rate = self.rate(&format!("{path}.default"), value),
                "categories" => {
                    let path = format!("{path}.categories");
                    let Some(entries) = self.mapping(value, &path, "{ training: 10 }") else {
                        continue;
                    };
                    for (category, rate) in entries {
                        let rate_path = format!("{path}.{}", category.value);
                        if let Some(rate) = self.rate(&rate_path, rate) {
                            categories.insert(category.value.clone(), rate);
                        }
                    }
                }
                _ => self.unknown_key(key, path, COUNTRY_KEYS),
            }
        }
        let has_default = entries.iter().any(|(key, _)| key.value == "default");
        if !has_default {
            self.error(
                &node.referenced,
                format!(
                    "`{path}` has no `default` rate; give the country's standard rate in \
                     percent, such as `default: 20`"
                ),
            );
        }
        if self.diagnostics.len() > before {
            return None;
        }
        Some(CountryTaxes {
            eu_member,
            default_rate: default_rate?,
            categories,
        })
    }

    /// Reads a tax rate in percent from 0 to 100, written as a number or a string.
    fn rate(&mut self, path: &str, node: &Spanned<Node>) -> Option<Decimal> {
        let parsed = match &node.value {
            Node::Scalar(value @ (Value::Number(_) | Value::String(_))) => {
                steward_domain::value::decimal(value).ok()
            }
            _ => None,
        };
        match parsed {
            Some(rate) if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&rate) => Some(rate),
            Some(rate) => {
                self.error(
                    &node.referenced,
                    format!("`{path}` is {rate}; a tax rate is a percentage from 0 to 100"),
                );
                None
            }
            None => {
                self.error(
                    &node.referenced,
                    format!(
                        "`{path}` is {}, not a number; write the tax rate in percent from 0 to \
                         100, such as 22",
                        node.value.describe()
                    ),
                );
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
                "`billing.rounding` is `per_invoice`; write per_line or per_document",
            ),
            (
                "billing:\n  taxes:\n    IT: { default: 22 }\n",
                2,
                "`billing.taxes` needs `billing.firm_country`",
            ),
            (
                "billing:\n  firm_country: FR\n  taxes:\n    IT: { default: 22 }\n",
                2,
                "the firm's country `FR` has no entry",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { eu: true }\n",
                4,
                "`billing.taxes.IT` has no `default` rate",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { default: 122 }\n",
                4,
                "`billing.taxes.IT.default` is 122; a tax rate is a percentage from 0 to 100",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT:\n      default: 22\n      \
                 categories: { training: ten }\n",
                6,
                "`billing.taxes.IT.categories.training` is `ten`, not a number; write the tax \
                 rate in percent from 0 to 100, such as 22",
            ),
            (
                "billing:\n  firm_country: IT\n",
                2,
                "`billing.firm_country` is set but `billing.taxes` is missing",
            ),
            (
                "billing:\n  currency: EUR\n",
                2,
                "unknown field `currency` in `billing`; expected one of firm_country, rounding, \
                 reverse_charge, taxes",
            ),
            (
                "billing:\n  reverse_charge: maybe\n",
                2,
                "`billing.reverse_charge` is `maybe`, not a boolean; write true or false",
            ),
            (
                "billing:\n  firm_country: Italy\n  taxes:\n    IT: { default: 22 }\n",
                2,
                "`billing.firm_country` is `Italy`, not an ISO 3166-1 alpha-2 country code",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: 22\n",
                4,
                "`billing.taxes.IT` is `22`, not a mapping; write it like `{ eu: true, default: \
                 22 }`",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { default: 22, vat: 5 }\n",
                4,
                "unknown field `vat` in `billing.taxes.IT`; expected one of eu, default, \
                 categories",
            ),
            (
                "billing:\n  firm_country: IT\n  taxes:\n    IT: { default: 22 }\n    it: { default: 20 }\n",
                5,
                "`billing.taxes.it` repeats country IT; keep one entry per country",
            ),
            (
                "billing: per_line\n",
                1,
                "`billing` is `per_line`, not a mapping",
            ),
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
    fn every_problem_is_reported_at_once() {
        let text = "\
billing:
  firm_country: IT
  rounding: per_invoice
  reverse_charge: maybe
  currency: EUR
  taxes:
    IT: { eu: true, default: twenty }
    DE: { eu: true, default: 19, categories: { training: ten } }
    Germany: { default: 19 }
";
        let (settings, diagnostics) = compile(&[("bad.yaml", text)]);
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "bad.yaml:3:13: `billing.rounding` is `per_invoice`; write per_line or \
                 per_document",
                "bad.yaml:4:19: `billing.reverse_charge` is `maybe`, not a boolean; write true \
                 or false",
                "bad.yaml:5:3: unknown field `currency` in `billing`; expected one of \
                 firm_country, rounding, reverse_charge, taxes",
                "bad.yaml:7:30: `billing.taxes.IT.default` is `twenty`, not a number; write the \
                 tax rate in percent from 0 to 100, such as 22",
                "bad.yaml:8:58: `billing.taxes.DE.categories.training` is `ten`, not a number; \
                 write the tax rate in percent from 0 to 100, such as 22",
                "bad.yaml:9:5: key `Germany` of `billing.taxes` is not an ISO 3166-1 alpha-2 \
                 country code; write two letters such as IT",
            ]
        );
        assert_eq!(settings, BillingSettings::default());
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
