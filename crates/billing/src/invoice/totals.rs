//! Line and document totals under the two rounding policies.
//!
//! A line's exact subtotal is `quantity × unit price × (1 − discount / 100)` and its exact tax
//! is `subtotal × tax rate / 100`. Amounts round half away from zero to the currency's minor
//! unit.
//!
//! - `per_line`: each line's subtotal is rounded, its tax is computed on the rounded subtotal
//!   and rounded, and the document's amounts are the sums of the lines.
//! - `per_document`: the document's untaxed amount is the rounded sum of the exact subtotals,
//!   and its tax the rounded sum of the exact taxes. Each line shows its rounded amounts,
//!   adjusted so that they add up to the document's. The difference is a whole number of
//!   minor units. It is given one unit at a time to the lines whose rounding moved them
//!   furthest the other way: largest remainder first, and earlier lines first on ties.
//!
//! Under both policies a line's total is its subtotal plus its tax, so the line totals sum
//! exactly to the document total.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use steward_domain::{Currency, Money};

use crate::invoice::Rounding;

/// Inputs of one line's amounts. Percentages are 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineAmounts {
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub discount: Decimal,
    pub tax_rate: Decimal,
}

/// One line's amounts at the currency's minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LineTotals {
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
}

/// Every line's amounts and the document's, which the lines sum to exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentTotals {
    pub lines: Vec<LineTotals>,
    pub untaxed: Money,
    pub tax: Money,
    pub total: Money,
}

/// Computes line and document totals under `rounding`, described in the module documentation.
pub fn compute_totals(
    lines: &[LineAmounts],
    currency: Currency,
    rounding: Rounding,
) -> DocumentTotals {
    let exact_subtotals: Vec<Decimal> = lines.iter().map(exact_subtotal).collect();
    let (subtotals, taxes) = match rounding {
        Rounding::PerLine => {
            let subtotals: Vec<Decimal> = exact_subtotals
                .iter()
                .map(|amount| round(*amount, currency))
                .collect();
            let taxes = subtotals
                .iter()
                .zip(lines)
                .map(|(subtotal, line)| round(percent_of(*subtotal, line.tax_rate), currency))
                .collect();
            (subtotals, taxes)
        }
        Rounding::PerDocument => {
            let exact_taxes: Vec<Decimal> = exact_subtotals
                .iter()
                .zip(lines)
                .map(|(subtotal, line)| percent_of(*subtotal, line.tax_rate))
                .collect();
            let untaxed = round(exact_subtotals.iter().sum(), currency);
            let tax = round(exact_taxes.iter().sum(), currency);
            (
                allocate(&exact_subtotals, untaxed, currency),
                allocate(&exact_taxes, tax, currency),
            )
        }
    };

    let money = |amount: Decimal| Money::round(amount, currency);
    let line_totals: Vec<LineTotals> = subtotals
        .iter()
        .zip(&taxes)
        .map(|(subtotal, tax)| LineTotals {
            subtotal: money(*subtotal),
            tax: money(*tax),
            total: money(subtotal + tax),
        })
        .collect();
    let untaxed: Decimal = subtotals.iter().sum();
    let tax: Decimal = taxes.iter().sum();
    DocumentTotals {
        lines: line_totals,
        untaxed: money(untaxed),
        tax: money(tax),
        total: money(untaxed + tax),
    }
}

fn exact_subtotal(line: &LineAmounts) -> Decimal {
    let gross = line.quantity * line.unit_price;
    gross - percent_of(gross, line.discount)
}

fn percent_of(amount: Decimal, percent: Decimal) -> Decimal {
    amount * percent / Decimal::ONE_HUNDRED
}

fn round(amount: Decimal, currency: Currency) -> Decimal {
    Money::round(amount, currency).amount
}

/// Rounds each exact amount and moves whole minor units between them until they sum to
/// `target`, which must be the rounded sum of `exact`.
fn allocate(exact: &[Decimal], target: Decimal, currency: Currency) -> Vec<Decimal> {
    let mut rounded: Vec<Decimal> = exact.iter().map(|a| round(*a, currency)).collect();
    if rounded.is_empty() {
        return rounded;
    }
    let unit = Decimal::new(1, currency.minor_units());
    let difference = target - rounded.iter().sum::<Decimal>();
    let steps = (difference / unit).trunc();
    if steps.is_zero() {
        return rounded;
    }

    // A positive difference goes to the lines rounded down the most, a negative one to the
    // lines rounded up the most.
    let upward = steps > Decimal::ZERO;
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|a, b| {
        let residual_a = exact[*a] - rounded[*a];
        let residual_b = exact[*b] - rounded[*b];
        let by_residual = if upward {
            residual_b.cmp(&residual_a)
        } else {
            residual_a.cmp(&residual_b)
        };
        by_residual.then(a.cmp(b))
    });
    let step = if upward { unit } else { -unit };
    let count = steps.abs().to_usize().unwrap_or(0);
    for index in order.iter().cycle().take(count) {
        rounded[*index] += step;
    }
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn currency(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn line(
        quantity: Decimal,
        unit_price: Decimal,
        discount: Decimal,
        tax: Decimal,
    ) -> LineAmounts {
        LineAmounts {
            quantity,
            unit_price,
            discount,
            tax_rate: tax,
        }
    }

    fn assert_lines_sum_to_document(totals: &DocumentTotals) {
        let subtotal: Decimal = totals.lines.iter().map(|l| l.subtotal.amount).sum();
        let tax: Decimal = totals.lines.iter().map(|l| l.tax.amount).sum();
        let total: Decimal = totals.lines.iter().map(|l| l.total.amount).sum();
        assert_eq!(subtotal, totals.untaxed.amount, "subtotals sum to untaxed");
        assert_eq!(tax, totals.tax.amount, "line taxes sum to tax");
        assert_eq!(total, totals.total.amount, "line totals sum to total");
    }

    #[test]
    fn discounted_line_rounds_by_policy() {
        let lines = [line(dec!(16), dec!(348.35), dec!(4), dec!(22))];
        let per_document = compute_totals(&lines, currency("EUR"), Rounding::PerDocument);
        assert_eq!(per_document.total.amount.to_string(), "6527.80");
        assert_eq!(per_document.untaxed.amount, dec!(5350.66));
        assert_eq!(per_document.tax.amount, dec!(1177.14));
        assert_lines_sum_to_document(&per_document);

        let per_line = compute_totals(&lines, currency("EUR"), Rounding::PerLine);
        assert_eq!(per_line.total.amount.to_string(), "6527.81");
        assert_eq!(per_line.lines[0].tax.amount, dec!(1177.15));
        assert_lines_sum_to_document(&per_line);
    }

    #[test]
    fn yen_lines_have_no_decimals() {
        let lines = [
            line(dec!(1.5), dec!(12345), dec!(0), dec!(10)),
            line(dec!(2.25), dec!(9999), dec!(5), dec!(10)),
            line(dec!(1), dec!(333), dec!(0), dec!(8)),
        ];
        let per_line = compute_totals(&lines, currency("JPY"), Rounding::PerLine);
        assert_eq!(per_line.lines[0].subtotal.amount.to_string(), "18518");
        assert_eq!(per_line.lines[1].subtotal.amount, dec!(21373));
        assert_eq!(per_line.lines[1].tax.amount, dec!(2137));
        assert_eq!(per_line.lines[2].tax.amount, dec!(27));
        assert_eq!(per_line.total.amount.to_string(), "44240");
        assert_lines_sum_to_document(&per_line);

        let per_document = compute_totals(&lines, currency("JPY"), Rounding::PerDocument);
        // Exact untaxed 18517.5 + 21372.8625 + 333 = 40223.3625, and exact tax 1851.75 +
        // 2137.28625 + 26.64 = 4015.67625.
        assert_eq!(per_document.untaxed.amount, dec!(40223));
        assert_eq!(per_document.tax.amount, dec!(4016));
        assert_eq!(per_document.total.amount.to_string(), "44239");
        for totals in &per_document.lines {
            assert_eq!(
                totals.total.amount.scale(),
                0,
                "yen amounts have no decimals"
            );
        }
        assert_lines_sum_to_document(&per_document);
    }

    #[test]
    fn per_document_allocates_the_rounding_difference() {
        // Three lines of 0.005 round to 0.01 each (0.03) but sum to 0.015, rounded 0.02.
        let lines = [
            line(dec!(1), dec!(0.005), dec!(0), dec!(0)),
            line(dec!(1), dec!(0.005), dec!(0), dec!(0)),
            line(dec!(1), dec!(0.005), dec!(0), dec!(0)),
        ];
        let totals = compute_totals(&lines, currency("EUR"), Rounding::PerDocument);
        assert_eq!(totals.untaxed.amount, dec!(0.02));
        let subtotals: Vec<Decimal> = totals.lines.iter().map(|l| l.subtotal.amount).collect();
        assert_eq!(subtotals, vec![dec!(0.00), dec!(0.01), dec!(0.01)]);
        assert_lines_sum_to_document(&totals);
    }

    #[test]
    fn per_document_spreads_several_units() {
        // Seven lines of 0.005 round to 0.01 each (0.07) but sum to 0.035, rounded 0.04, so
        // three lines give back one cent each.
        let lines = vec![line(dec!(1), dec!(0.005), dec!(0), dec!(0)); 7];
        let totals = compute_totals(&lines, currency("EUR"), Rounding::PerDocument);
        assert_eq!(totals.untaxed.amount, dec!(0.04));
        let zeros = totals
            .lines
            .iter()
            .filter(|l| l.subtotal.amount.is_zero())
            .count();
        assert_eq!(zeros, 3);
        assert_lines_sum_to_document(&totals);
    }

    #[test]
    fn bahraini_dinar_keeps_three_decimals() {
        let lines = [line(dec!(3), dec!(10.125), dec!(10), dec!(10))];
        let totals = compute_totals(&lines, currency("BHD"), Rounding::PerLine);
        // 30.375 less 10 % is 27.3375, rounded 27.338, and tax 2.7338 rounds to 2.734.
        assert_eq!(totals.untaxed.amount.to_string(), "27.338");
        assert_eq!(totals.tax.amount.to_string(), "2.734");
        assert_eq!(totals.total.amount.to_string(), "30.072");
    }

    #[test]
    fn many_lines_sum_exactly_under_both_policies() {
        let mut lines = Vec::new();
        for index in 1..=40 {
            let quantity = Decimal::new(index * 37, 2);
            let price = Decimal::new(10_000 + index * 131, 2);
            let discount = Decimal::from(index % 7);
            let tax = if index % 2 == 0 { dec!(22) } else { dec!(10) };
            lines.push(line(quantity, price, discount, tax));
        }
        for rounding in [Rounding::PerLine, Rounding::PerDocument] {
            let totals = compute_totals(&lines, currency("EUR"), rounding);
            assert_lines_sum_to_document(&totals);
        }
    }
}
