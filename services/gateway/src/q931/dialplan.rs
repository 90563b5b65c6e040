//! When an overlap-dialled called number is complete (§5.1.3, §5.2.4): patterns in the style
//! PBXs use. `0`-`9`, `*`, `#` match themselves, `X` any digit, `Z` 1-9, `N` 2-9, `[1-4]` a
//! range, and a final `.` one or more further digits (a number of open length, complete on
//! sending complete or when the digit timer runs out).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialPlanError {
    #[error("dial plan pattern {0:?}: empty")]
    Empty(String),
    #[error("dial plan pattern {pattern:?}: {what} at {at}")]
    Bad { pattern: String, what: &'static str, at: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Inclusive range of digits; `*` and `#` are themselves only.
    Range(u8, u8),
    /// The trailing `.`.
    Rest,
}

impl Token {
    fn matches(self, digit: u8) -> bool {
        match self {
            Token::Range(lo, hi) => (lo..=hi).contains(&digit),
            Token::Rest => digit.is_ascii_digit() || digit == b'*' || digit == b'#',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<Token>);

/// How far a number has come against the dial plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// It matches a pattern and no pattern could take more digits.
    Complete,
    /// More digits may complete it (or it matches an open-length pattern).
    Incomplete,
    /// No pattern can match it, whatever follows.
    Invalid,
}

/// One pattern against a number: how it fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Exact,
    /// Matches an open-length pattern: complete, yet more digits fit.
    Open,
    Prefix,
    No,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, DialPlanError> {
        let bad = |what, at| DialPlanError::Bad { pattern: text.to_owned(), what, at };
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = bytes.get(i) {
            let token = match c {
                b'0'..=b'9' | b'*' | b'#' => Token::Range(c, c),
                b'X' | b'x' => Token::Range(b'0', b'9'),
                b'Z' | b'z' => Token::Range(b'1', b'9'),
                b'N' | b'n' => Token::Range(b'2', b'9'),
                b'[' => match bytes.get(i + 1..i + 5) {
                    Some([lo @ b'0'..=b'9', b'-', hi @ b'0'..=b'9', b']']) if lo <= hi => {
                        i += 4;
                        Token::Range(*lo, *hi)
                    }
                    _ => return Err(bad("a range is written [lo-hi]", i)),
                },
                b'.' if i + 1 == bytes.len() && i > 0 => Token::Rest,
                b'.' => return Err(bad("`.` only ends a pattern, after at least one digit", i)),
                _ => return Err(bad("unexpected character", i)),
            };
            tokens.push(token);
            i += 1;
        }
        if tokens.is_empty() {
            return Err(DialPlanError::Empty(text.to_owned()));
        }
        Ok(Pattern(tokens))
    }

    fn fit(&self, number: &str) -> Fit {
        let digits = number.as_bytes();
        for (i, &d) in digits.iter().enumerate() {
            match self.0.get(i) {
                Some(Token::Rest) => return if digits[i..].iter().all(|&d| Token::Rest.matches(d)) { Fit::Open } else { Fit::No },
                Some(t) if t.matches(d) => {}
                _ => return Fit::No,
            }
        }
        match self.0.len().cmp(&digits.len()) {
            std::cmp::Ordering::Equal => Fit::Exact,
            _ => Fit::Prefix,
        }
    }
}

/// The configured dial plan; an empty one means en-bloc sending only: every SETUP is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialPlan(Vec<Pattern>);

impl DialPlan {
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<DialPlan, DialPlanError> {
        patterns.iter().map(|p| Pattern::parse(p.as_ref())).collect::<Result<_, _>>().map(DialPlan)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn check(&self, number: &str) -> Completeness {
        let fits: Vec<Fit> = self.0.iter().map(|p| p.fit(number)).collect();
        let more_may_come = fits.iter().any(|f| matches!(f, Fit::Prefix | Fit::Open));
        if fits.contains(&Fit::Exact) && !more_may_come {
            Completeness::Complete
        } else if more_may_come {
            Completeness::Incomplete
        } else {
            Completeness::Invalid
        }
    }

    /// Whether the number may go as it is once no more digits come (the digit timer ran out).
    pub fn complete_on_timeout(&self, number: &str) -> bool {
        self.0.iter().any(|p| matches!(p.fit(number), Fit::Exact | Fit::Open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(p: &[&str]) -> DialPlan {
        DialPlan::parse(p).unwrap()
    }

    #[test]
    fn fixed_length_extensions_complete_on_their_last_digit() {
        let p = plan(&["2XXX", "3[0-4]XX"]);
        assert_eq!(p.check(""), Completeness::Incomplete);
        assert_eq!(p.check("2"), Completeness::Incomplete);
        assert_eq!(p.check("200"), Completeness::Incomplete);
        assert_eq!(p.check("2000"), Completeness::Complete);
        assert_eq!(p.check("20001"), Completeness::Invalid);
        assert_eq!(p.check("35"), Completeness::Invalid);
        assert_eq!(p.check("3412"), Completeness::Complete);
        assert_eq!(p.check("9"), Completeness::Invalid);
    }

    #[test]
    fn an_open_pattern_waits_for_sending_complete_or_the_timer() {
        let p = plan(&["0Z.", "112"]);
        assert_eq!(p.check("0"), Completeness::Incomplete);
        assert!(!p.complete_on_timeout("0"));
        assert_eq!(p.check("0612"), Completeness::Incomplete);
        assert!(p.complete_on_timeout("0612"));
        assert_eq!(p.check("112"), Completeness::Complete);
        assert_eq!(p.check("00"), Completeness::Invalid);
    }

    #[test]
    fn a_number_that_is_also_a_prefix_waits() {
        let p = plan(&["100", "100X"]);
        assert_eq!(p.check("100"), Completeness::Incomplete);
        assert!(p.complete_on_timeout("100"));
        assert_eq!(p.check("1005"), Completeness::Complete);
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in ["", "2X.X", ".", "[1-]", "2a"] {
            assert!(DialPlan::parse(&[bad]).is_err(), "{bad:?}");
        }
        assert!(DialPlan::parse::<&str>(&[]).unwrap().is_empty());
    }
}
