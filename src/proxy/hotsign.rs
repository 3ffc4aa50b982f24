//! The "pay from any wallet" parts of the login page: the hot-sign link and
//! its QR code.
//!
//! Why a module: the link must be built with exact percent-encoding (a memo
//! mangled on the way to the wallet is a login that never happens; the
//! encoding itself lives in `chain::hotsign`), and the QR code is rendered here, on the server, as inline SVG, so the login page
//! never asks a third-party host for an image. The link itself points at the
//! chain's usual signing service; following it is the visitor's choice.

use qrcode::QrCode;
use qrcode::render::svg;

use super::PaymentInfo;
use crate::chain::ChainName;

/// The hot-sign transfer link for `memo`: Hive Signer on Hive, SteemLogin on
/// Steem (both take `to`, `amount` as `"0.001 HIVE"` and `memo`); the
/// encoding is `chain::hotsign`'s, shared with the report's unfollow links.
pub fn hot_sign_url(payment: &PaymentInfo, memo: &str) -> String {
    let chain = if payment.chain == "hive" {
        ChainName::Hive
    } else {
        ChainName::Steem
    };
    crate::chain::hotsign::transfer_url(chain, &payment.pay_to, &payment.amount, memo)
}

/// `text` as a QR code in inline SVG (no XML declaration), one user unit per
/// module with the standard quiet zone; CSS decides the displayed size.
/// `None` when the text is too long for any QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color>()
        .module_dimensions(1, 1)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    let start = image.find("<svg")?;
    Some(image[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(chain: &str) -> PaymentInfo {
        let currency = if chain == "hive" { "HIVE" } else { "STEEM" };
        PaymentInfo {
            pay_to: "gate-test".into(),
            amount: format!("0.001 {currency}"),
            amount_decimal: "0.001".into(),
            currency: currency.into(),
            chain: chain.into(),
        }
    }

    #[test]
    fn links_encode_every_value_exactly() {
        assert_eq!(
            hot_sign_url(&payment("hive"), "sg-AB12"),
            "https://hivesigner.com/sign/transfer?to=gate-test&amount=0.001%20HIVE&memo=sg-AB12"
        );
        assert_eq!(
            hot_sign_url(&payment("steem"), "a b&c=#d+é"),
            "https://steemlogin.com/sign/transfer?to=gate-test&amount=0.001%20STEEM&memo=a%20b%26c%3D%23d%2B%C3%A9"
        );
        // The memo decodes back to itself.
        let url = url::Url::parse(&hot_sign_url(&payment("steem"), "a b&c=#d+é")).unwrap();
        let memo = url.query_pairs().find(|(k, _)| k == "memo").unwrap().1;
        assert_eq!(memo, "a b&c=#d+é");
    }

    #[test]
    fn qr_is_inline_svg_without_external_references() {
        let svg = qr_svg(&hot_sign_url(&payment("hive"), "sg-AB12")).unwrap();
        assert!(svg.starts_with("<svg"), "{svg:.40}");
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml") && !svg.contains("href"));
        // One unit per module: a QR side is 17 + 4·version modules, plus a
        // 4-module quiet zone on each side; a ~80-byte link needs version 4+.
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap();
        assert!(width >= 17 + 4 * 4 + 8, "{width}");
        assert_eq!((width - 8 - 17) % 4, 0, "{width}");
        assert!(qr_svg(&"x".repeat(5000)).is_none());
    }
}
