//! The file `sbactl user import` reads: one user a line, fields split by `;` (sipp's CSV
//! injection format) or, after a header line, by the header's own separator (`;`, `,` or a tab,
//! as `mysql -B` prints Kamailio's subscriber table). A field in double quotes may hold the
//! separator, and `""` inside it stands for one quote. Without a header the fields are
//! `name;password` (more fields are ignored, as sipp's are); a header names the columns:
//! `username` (or `name`), `password`, `ha1` (Kamailio's MD5 HA1) and `domain`.
use holdfast_store::Secret;

#[derive(Debug, PartialEq, Eq)]
pub struct Import {
    pub users: Vec<(String, Secret)>,
    /// Rows of a `domain` column naming another domain, left out.
    pub other_domains: usize,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct ImportError {
    pub line: usize,
    pub why: String,
}

struct Columns {
    name: usize,
    password: Option<usize>,
    ha1: Option<usize>,
    domain: Option<usize>,
}

/// Parses the file's text for `domain`; `valid_user` says which names may be stored.
pub fn parse(text: &str, domain: &str, valid_user: fn(&str) -> bool) -> Result<Import, ImportError> {
    let mut import = Import { users: Vec::new(), other_domains: 0 };
    let (mut separator, mut columns) = (';', None::<Columns>);
    let mut seen_data = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |why: String| ImportError { line: line_no, why };
        let trimmed = line.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') || matches!(trimmed.trim(), "SEQUENTIAL" | "RANDOM") {
            continue;
        }
        if !seen_data && columns.is_none() {
            if let Some((sep, header)) = header(trimmed).map_err(err)? {
                (separator, columns) = (sep, Some(header));
                continue;
            }
        }
        seen_data = true;
        let fields = split(trimmed, separator).map_err(err)?;
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(String::as_str).filter(|f| !f.is_empty());
        let (name, password, ha1, row_domain) = match &columns {
            Some(c) => (field(Some(c.name)), field(c.password), field(c.ha1), field(c.domain)),
            None => (field(Some(0)), field(Some(1)), None, None),
        };
        if row_domain.is_some_and(|d| !d.eq_ignore_ascii_case(domain)) {
            import.other_domains += 1;
            continue;
        }
        let name = name.ok_or_else(|| err("no user name".into()))?;
        if !valid_user(name) {
            return Err(err(format!("bad user name {name:?}")));
        }
        let secret = match (password, ha1) {
            (Some(p), _) => Secret::Password(p.to_string()),
            (None, Some(h)) if h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Secret::Ha1Md5(h.to_ascii_lowercase()),
            (None, Some(_)) => return Err(err(format!("the ha1 of {name:?} is not 32 hex digits (an MD5 HA1)"))),
            (None, None) => return Err(err(format!("no password or ha1 for {name:?}"))),
        };
        import.users.push((name.to_string(), secret));
    }
    Ok(import)
}

/// A header line: its separator and the columns it names; None for a data line.
fn header(line: &str) -> Result<Option<(char, Columns)>, String> {
    let separator = ['\t', ';', ','].into_iter().find(|s| line.contains(*s)).unwrap_or(';');
    let names: Vec<String> = split(line, separator)?.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let Some(name) = find(&["username", "name"]) else { return Ok(None) };
    let (password, ha1, domain) = (find(&["password"]), find(&["ha1"]), find(&["domain"]));
    if password.is_none() && ha1.is_none() {
        return Err("the header names neither a password nor an ha1 column".into());
    }
    Ok(Some((separator, Columns { name, password, ha1, domain })))
}

/// Splits one line at `separator`, outside double quotes.
fn split(line: &str, separator: char) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(c) if c == separator => {}
                Some(_) => return Err("text after a quoted field's closing quote".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(c) if c == separator => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_name(n: &str) -> bool {
        !n.is_empty() && !n.contains(['@', ' '])
    }

    fn users(text: &str) -> Vec<(String, Secret)> {
        parse(text, "branch.test", any_name).unwrap().users
    }

    fn pw(name: &str, p: &str) -> (String, Secret) {
        (name.into(), Secret::Password(p.into()))
    }

    #[test]
    fn sipp_lines_and_quoted_passwords_keep_their_semicolons() {
        let text = "SEQUENTIAL\n# comment\n1001;secret\n1002;\"pa;ss\"\"word\";extra\n1003;plain;sipp-field\n\n";
        assert_eq!(users(text), [pw("1001", "secret"), pw("1002", "pa;ss\"word"), pw("1003", "plain")]);
    }

    #[test]
    fn kamailio_subscriber_export_with_ha1_only() {
        // mysql -B -e 'SELECT username, domain, ha1 FROM subscriber'
        let ha1 = "84E0A095F9A4F3B3DA0CDDEC1C0C1B4E";
        let text = format!("username\tdomain\tha1\nalice\tbranch.test\t{ha1}\nbob\tother.test\t{ha1}\n");
        let import = parse(&text, "branch.test", any_name).unwrap();
        assert_eq!(import.users, [("alice".to_string(), Secret::Ha1Md5(ha1.to_ascii_lowercase()))]);
        assert_eq!(import.other_domains, 1);
        // A password column wins where a row has one.
        let both = format!("name;password;ha1\ncarol;;{ha1}\ndave;pw;{ha1}\n");
        assert_eq!(users(&both), [("carol".into(), Secret::Ha1Md5(ha1.to_ascii_lowercase())), pw("dave", "pw")]);
    }

    #[test]
    fn faults_name_their_line() {
        let fault = |text: &str| parse(text, "branch.test", any_name).unwrap_err();
        assert_eq!(fault("1001;ok\n1002\n").line, 2);
        assert_eq!(fault("1001;\"open\n").line, 1);
        assert_eq!(fault("1001;\"a\"b\n").line, 1);
        assert_eq!(fault("username;ha1\nalice;123\n").why, "the ha1 of \"alice\" is not 32 hex digits (an MD5 HA1)");
        assert_eq!(fault("username;domain\nalice;branch.test\n").line, 1);
        assert_eq!(fault("bad name;pw\n").why, "bad user name \"bad name\"");
    }
}
