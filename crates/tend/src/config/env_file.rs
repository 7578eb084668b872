//! The format of `env_file`: `KEY=VALUE` lines, as written for docker, foreman and dotenv.
//!
//! Blank lines and lines starting with `#` are ignored; a line may start with `export `; the
//! value may be wrapped in single or double quotes, taken literally (no escapes, no `$VAR`
//! expansion); an unquoted value ends at a ` #` comment.

/// Whether `name` may name an environment variable: a letter or `_`, then letters, digits
/// and `_`.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the text of an env file into variables in file order. The error is the 1-based
/// line number and what is wrong with that line.
pub(super) fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut vars = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line.strip_prefix("export ").map_or(line, str::trim_start);
        let bad = |why: String| (index + 1, why);
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| bad(format!("expected KEY=VALUE, found {line:?}")))?;
        let key = key.trim_end();
        if !valid_name(key) {
            return Err(bad(format!(
                "{key:?} is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let value = unquote(value.trim_start()).map_err(bad)?;
        vars.push((key.to_owned(), value));
    }
    Ok(vars)
}

/// The value of a line: the text inside quotes, or the unquoted text before a ` #` comment.
fn unquote(value: &str) -> Result<String, String> {
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        let comment = value
            .match_indices('#')
            .find(|(i, _)| value[..*i].ends_with(char::is_whitespace));
        return Ok(comment
            .map_or(value, |(i, _)| &value[..i])
            .trim_end()
            .to_owned());
    };
    let inner = &value[1..];
    let end = inner
        .find(quote)
        .ok_or_else(|| format!("the value has no closing {quote}"))?;
    let after = inner[end + 1..].trim_start();
    if !after.is_empty() && !after.starts_with('#') {
        return Err(format!("unexpected {after:?} after the closing {quote}"));
    }
    Ok(inner[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn reads_lines_comments_export_and_quotes() {
        let text = "# a comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\n\
                    D='single'  # comment\nE=x # comment\nF=url#fragment\nG=\nH=a=b\r\n";
        assert_eq!(
            vars(text),
            [
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "quoted # not a comment"),
                pair("D", "single"),
                pair("E", "x"),
                pair("F", "url#fragment"),
                pair("G", ""),
                pair("H", "a=b"),
            ]
        );
    }

    #[test]
    fn bad_lines_give_their_line_number() {
        assert_eq!(
            parse("A=1\n\njust words\n"),
            Err((3, "expected KEY=VALUE, found \"just words\"".into()))
        );
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert!(parse("A=\"open\n").unwrap_err().1.contains("no closing \""));
        assert!(parse("A='x' y\n")
            .unwrap_err()
            .1
            .contains("after the closing '"));
        assert!(parse("1A=x\n")
            .unwrap_err()
            .1
            .contains("not a variable name"));
        assert!(parse("=x\n").is_err());
        assert!(parse("MY VAR=x\n").is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("PATH"));
        assert!(valid_name("_x1"));
        assert!(!valid_name(""));
        assert!(!valid_name("1X"));
        assert!(!valid_name("A-B"));
        assert!(!valid_name("A=B"));
    }
}
