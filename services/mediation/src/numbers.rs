//! Dial plan: what a user dialled, turned into E.164 by the first normalization rule that
//! matches it (the seeds' "normalization rules"), plus the `;ext=` an E.164 number may carry.
use regex::Regex;
use std::fmt;

/// One rule: a regex over the whole dialled number (anchored here, so `\d{4}` means exactly four
/// digits) and its replacement, `$1`/`${1}` naming groups.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pattern: Regex,
    replace: String,
}

impl Rule {
    pub fn new(name: &str, pattern: &str, replace: &str) -> Result<Rule, regex::Error> {
        Ok(Rule { name: name.to_string(), pattern: anchored(pattern)?, replace: replace.to_string() })
    }

    pub fn pattern(&self) -> &str {
        self.pattern.as_str()
    }

    /// The replacement when the rule matches the whole of `number`.
    pub fn apply(&self, number: &str) -> Option<String> {
        self.pattern.is_match(number).then(|| self.pattern.replace(number, self.replace.as_str()).into_owned())
    }
}

/// Compiles `pattern` so that it must match the whole input.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// A number after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `+` and 1 to 15 digits.
    pub e164: String,
    /// The `;ext=` part, kept apart so routes match on the number alone.
    pub ext: Option<String>,
    /// The rule that produced it; None when the number was dialled in E.164 already.
    pub rule: Option<String>,
}

impl fmt::Display for Normalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)?;
        if let Some(ext) = &self.ext {
            write!(f, ";ext={ext}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{0:?} is not a phone number")]
    NotANumber(String),
    #[error("no normalization rule matches {0:?}")]
    NoRule(String),
    #[error("rule {rule} turned {dialled:?} into {result:?}, which is not E.164")]
    NotE164 { rule: String, dialled: String, result: String },
}

/// The dial plan of a site: rules tried in order.
#[derive(Debug, Clone, Default)]
pub struct DialPlan {
    pub rules: Vec<Rule>,
}

impl DialPlan {
    /// Normalizes what was dialled (a Request-URI user part or tel: number): visual separators
    /// (RFC 3966 `-` `.` `(` `)` and spaces) are dropped, `;ext=` is split off, then the first
    /// matching rule rewrites the number. A number already in E.164 that no rule claims is kept.
    pub fn normalize(&self, dialled: &str) -> Result<Normalized, NumberError> {
        let (number, ext) = split_ext(dialled);
        let number: String = number.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ')).collect();
        let digits = number.strip_prefix('+').unwrap_or(&number);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#') {
            return Err(NumberError::NotANumber(dialled.to_string()));
        }
        for rule in &self.rules {
            if let Some(result) = rule.apply(&number) {
                if !is_e164(&result) {
                    return Err(NumberError::NotE164 { rule: rule.name.clone(), dialled: number, result });
                }
                return Ok(Normalized { e164: result, ext, rule: Some(rule.name.clone()) });
            }
        }
        if is_e164(&number) {
            return Ok(Normalized { e164: number, ext, rule: None });
        }
        Err(NumberError::NoRule(number))
    }
}

/// `+` then 1 to 15 digits, the first not 0 (ITU-T E.164).
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// Splits `number;ext=123;other` into the number and the extension; other parameters (such as
/// a phone-context) are dropped: the dial plan is the context here.
fn split_ext(dialled: &str) -> (&str, Option<String>) {
    let mut parts = dialled.split(';');
    let number = parts.next().unwrap_or_default();
    let ext = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("ext"))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    (number, ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> DialPlan {
        DialPlan {
            rules: vec![
                Rule::new("extension", r"(3\d{3})", "+1555987${1}").unwrap(),
                Rule::new("international", r"011(\d{7,15})", "+$1").unwrap(),
                Rule::new("national", r"1?([2-9]\d{9})", "+1$1").unwrap(),
                Rule::new("local", r"([2-9]\d{6})", "+1555$1").unwrap(),
            ],
        }
    }

    #[test]
    fn four_digit_extensions() {
        let n = plan().normalize("3012").unwrap();
        assert_eq!((n.e164.as_str(), n.rule.as_deref()), ("+15559873012", Some("extension")));
        // Anchored: five digits are no extension, and nothing else claims them.
        assert_eq!(plan().normalize("30123"), Err(NumberError::NoRule("30123".into())));
    }

    #[test]
    fn national_international_and_local_forms() {
        let p = plan();
        assert_eq!(p.normalize("12125550100").unwrap().e164, "+12125550100");
        assert_eq!(p.normalize("(212) 555-0100").unwrap().e164, "+12125550100");
        let n = p.normalize("011442079460000").unwrap();
        assert_eq!((n.e164.as_str(), n.rule.as_deref()), ("+442079460000", Some("international")));
        assert_eq!(p.normalize("5550123").unwrap().e164, "+15555550123");
    }

    #[test]
    fn e164_passes_through_and_ext_is_kept() {
        let n = plan().normalize("+4930123456;ext=22").unwrap();
        assert_eq!(n, Normalized { e164: "+4930123456".into(), ext: Some("22".into()), rule: None });
        assert_eq!(n.to_string(), "+4930123456;ext=22");
        let n = plan().normalize("2125550100;phone-context=branch;ext=7").unwrap();
        assert_eq!(n.to_string(), "+12125550100;ext=7");
    }

    #[test]
    fn refusals() {
        assert_eq!(plan().normalize("alice"), Err(NumberError::NotANumber("alice".into())));
        assert_eq!(plan().normalize(""), Err(NumberError::NotANumber("".into())));
        let bad = DialPlan { rules: vec![Rule::new("broken", r"(\d+)", "0$1").unwrap()] };
        assert!(matches!(bad.normalize("123"), Err(NumberError::NotE164 { .. })));
        assert!(!is_e164("+0123") && !is_e164("+1234567890123456") && is_e164("+1"));
    }
}
