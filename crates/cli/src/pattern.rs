//! File patterns to datasets: which files a `kiln ingest` (or `kiln serve -r`) pattern names
//! and the key values each file gets.
//!
//! Placeholder patterns follow Terracotta's `ingest`: `{key}` captures a key value made of
//! letters and digits (`[^\W_]+`, so `_` separates values), `{}` matches anything within one
//! path component, `{{` and `}}` are literal braces, a key repeated in a pattern must have the
//! same value at every place, and keys are named in order of first appearance. With `regex`,
//! patterns are regular expressions whose named groups (`(?P<name>...)`) are the keys, in
//! order of appearance, matched against the whole path.
//!
//! Files are found by walking the pattern's fixed directory prefix (the text before the first
//! placeholder or regex operator, up to its last `/`), and a path is matched as that prefix
//! joined with the names found below it, so relative patterns match relative paths.
//! Placeholder patterns are walked exactly as deep as they have `/`s; regular expressions are
//! walked to [`MAX_REGEX_DEPTH`] levels without following symbolic links to directories (a
//! link loop cannot make the walk endless). Symbolic links to files, dangling ones included,
//! are candidates like files: a dangling link is reported when the file is opened, not
//! silently dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context};
use regex::Regex;

/// How deep below its fixed prefix a regular expression pattern is searched.
pub const MAX_REGEX_DEPTH: usize = 32;

/// The files that patterns matched, keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// Key names, in order of appearance in the patterns.
    pub keys: Vec<String>,
    /// One entry per file: key values (in `keys` order) and the path as matched; sorted by
    /// key values, and no two entries share key values.
    pub datasets: Vec<(Vec<String>, PathBuf)>,
}

/// Expands patterns to datasets. All patterns must have the same keys; every pattern must
/// match at least one file; two different files must not get the same key values.
pub fn expand(patterns: &[String], regex: bool) -> anyhow::Result<Expansion> {
    if patterns.is_empty() {
        bail!("no pattern given");
    }
    let mut keys: Option<(Vec<String>, &str)> = None;
    let mut by_keys: BTreeMap<Vec<String>, PathBuf> = BTreeMap::new();
    for pattern in patterns {
        let compiled = if regex {
            Compiled::from_regex(pattern, true)?
        } else {
            Compiled::from_placeholders(pattern, true)?
        };
        match &keys {
            None => keys = Some((compiled.keys.clone(), pattern)),
            Some((first, first_pattern)) if *first != compiled.keys => bail!(
                "all patterns must have the same keys: {first_pattern:?} has {first:?}, \
                 {pattern:?} has {:?}",
                compiled.keys
            ),
            Some(_) => {}
        }
        let matches = compiled.matches(pattern)?;
        if matches.is_empty() {
            let hint = if regex {
                ""
            } else {
                " (a {key} value is letters and digits only: '_' and '-' separate values; \
                 use --regex for other names)"
            };
            bail!("pattern {pattern:?} matches no file{hint}");
        }
        for (values, path) in matches {
            match by_keys.get(&values) {
                Some(other) if *other != path => bail!(
                    "{} and {} both map to keys {values:?}; keys must identify one file",
                    other.display(),
                    path.display()
                ),
                Some(_) => {}
                None => {
                    by_keys.insert(values, path);
                }
            }
        }
    }
    Ok(Expansion {
        keys: keys.map(|(k, _)| k).unwrap_or_default(),
        datasets: by_keys.into_iter().collect(),
    })
}

/// A pattern matched against the URIs stored in a catalog rather than against files on disk
/// (`kiln collection add --dataset-pattern`): the same syntax as [`expand`], but `{}` alone is
/// enough, since captured key values are not used.
///
/// Ingest stores canonical absolute paths, while a pattern may be relative or go through a
/// symbolic link, as it may for `kiln ingest`. So when the pattern's fixed directory exists
/// here, a URI below that directory's canonical path is matched as that directory, as typed,
/// joined with the rest of the URI; any URI is also matched as it is stored.
#[derive(Debug)]
pub struct UriMatcher {
    /// The fixed directory prefix as typed (empty or ending in `/`).
    root: String,
    /// Its canonical path with a trailing `/`, when it exists locally.
    canonical_root: Option<String>,
    regex: Regex,
}

impl UriMatcher {
    pub fn new(pattern: &str, regex: bool) -> anyhow::Result<Self> {
        let compiled = if regex {
            Compiled::from_regex(pattern, false)?
        } else {
            Compiled::from_placeholders(pattern, false)?
        };
        let dir = if compiled.root.is_empty() {
            "."
        } else {
            compiled.root.as_str()
        };
        let canonical_root = std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.to_str().map(|s| format!("{}/", s.trim_end_matches('/'))));
        Ok(Self {
            root: compiled.root,
            canonical_root,
            regex: compiled.regex,
        })
    }

    pub fn is_match(&self, uri: &str) -> bool {
        if self.regex.is_match(uri) {
            return true;
        }
        let Some(rest) = self
            .canonical_root
            .as_deref()
            .and_then(|canonical| uri.strip_prefix(canonical))
        else {
            return false;
        };
        self.regex.is_match(&format!("{}{rest}", self.root))
    }
}

/// A pattern ready to match paths.
#[derive(Debug)]
struct Compiled {
    /// The fixed directory prefix as typed, empty or ending in `/`.
    root: String,
    /// Matches a whole path; capture group `i + 1` holds the value of key `groups[i]`.
    regex: Regex,
    keys: Vec<String>,
    /// Key index of each capture group (in group order); a key may appear more than once.
    groups: Vec<usize>,
    /// Path components below `root`: exact for placeholder patterns, a bound for regexes.
    depth: Depth,
}

#[derive(Debug, Clone, Copy)]
enum Depth {
    Exactly(usize),
    AtMost(usize),
}

enum Token {
    Literal(String),
    Key(String),
    Wildcard,
}

impl Compiled {
    /// `require_keys`: file patterns must name a key; URI matchers need only match.
    fn from_placeholders(pattern: &str, require_keys: bool) -> anyhow::Result<Self> {
        let tokens = tokenize(pattern)?;
        let mut keys: Vec<String> = Vec::new();
        let mut groups = Vec::new();
        let mut prefix = String::new();
        let mut body = String::new();
        let mut seen_placeholder = false;
        let mut body_slashes = 0;
        for token in &tokens {
            match token {
                Token::Literal(text) if !seen_placeholder => prefix.push_str(text),
                Token::Literal(text) => {
                    body_slashes += text.matches('/').count();
                    body.push_str(&regex::escape(text));
                }
                Token::Key(name) => {
                    seen_placeholder = true;
                    let index = match keys.iter().position(|k| k == name) {
                        Some(i) => i,
                        None => {
                            keys.push(name.clone());
                            keys.len() - 1
                        }
                    };
                    groups.push(index);
                    body.push_str(r"([^\W_]+)");
                }
                Token::Wildcard => {
                    seen_placeholder = true;
                    body.push_str(r"[^/]*?");
                }
            }
        }
        if keys.is_empty() && require_keys {
            bail!("pattern {pattern:?} has no {{key}} placeholder; name at least one key");
        }
        // The literal text after the prefix's last `/` belongs to the first walked level.
        let split = prefix.rfind('/').map_or(0, |i| i + 1);
        let (root, head) = prefix.split_at(split);
        let rest = format!("{}{body}", regex::escape(head));
        let depth = head.matches('/').count() + body_slashes;
        let regex = Regex::new(&format!("^{}{rest}$", regex::escape(root)))
            .with_context(|| format!("pattern {pattern:?} does not make a valid expression"))?;
        Ok(Self {
            root: root.to_owned(),
            regex,
            keys,
            groups,
            depth: Depth::Exactly(depth),
        })
    }

    fn from_regex(pattern: &str, require_keys: bool) -> anyhow::Result<Self> {
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .with_context(|| format!("{pattern:?} is not a valid regular expression"))?;
        let mut keys = Vec::new();
        let mut groups = Vec::new();
        let mut named = HashMap::new();
        // Group 0 is the whole match and group 1 our `(?:...)` is not a group, so the user's
        // groups keep their numbers; unnamed groups are ignored.
        for (i, name) in regex.capture_names().enumerate().skip(1) {
            if let Some(name) = name {
                named.insert(i, keys.len());
                keys.push(name.to_owned());
            }
        }
        if keys.is_empty() && require_keys {
            bail!("regular expression {pattern:?} has no named group (?P<key>...)");
        }
        let capture_count = regex.captures_len();
        for i in 1..capture_count {
            groups.push(named.get(&i).copied().unwrap_or(usize::MAX));
        }
        Ok(Self {
            root: literal_dir_prefix(pattern),
            regex,
            keys,
            groups,
            depth: Depth::AtMost(MAX_REGEX_DEPTH),
        })
    }

    /// The files under the root that the pattern matches, with their key values.
    fn matches(&self, pattern: &str) -> anyhow::Result<Vec<(Vec<String>, PathBuf)>> {
        let mut candidates = Vec::new();
        walk(&self.root, self.depth, 0, &mut candidates)
            .with_context(|| format!("cannot search the files of pattern {pattern:?}"))?;
        let mut out = Vec::new();
        for path in candidates {
            let Some(caps) = self.regex.captures(&path) else {
                continue;
            };
            let mut values: Vec<Option<String>> = vec![None; self.keys.len()];
            let mut consistent = true;
            for (g, &key) in self.groups.iter().enumerate() {
                let (Some(m), Some(slot)) = (caps.get(g + 1), values.get_mut(key)) else {
                    continue;
                };
                match slot {
                    Some(v) if v != m.as_str() => consistent = false,
                    Some(_) => {}
                    None => *slot = Some(m.as_str().to_owned()),
                }
            }
            if !consistent {
                continue;
            }
            let mut complete = Vec::with_capacity(values.len());
            for (value, key) in values.into_iter().zip(&self.keys) {
                let Some(value) = value else {
                    bail!("{path}: key {key:?} did not take part in the match");
                };
                check_value(&path, key, &value)?;
                complete.push(value);
            }
            out.push((complete, PathBuf::from(path)));
        }
        Ok(out)
    }
}

/// Splits a placeholder pattern into literal text, `{key}` and `{}`.
fn tokenize(pattern: &str) -> anyhow::Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '}' => bail!("pattern {pattern:?} has a single '}}' (write '}}}}' for a literal one)"),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => bail!("pattern {pattern:?} has an unclosed '{{'"),
                    }
                }
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                if name.is_empty() {
                    tokens.push(Token::Wildcard);
                } else if is_identifier(&name) {
                    tokens.push(Token::Key(name));
                } else {
                    bail!(
                        "pattern {pattern:?}: {{{name}}} is not a key name \
                         ([A-Za-z_][A-Za-z0-9_]*) nor {{}}"
                    );
                }
            }
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The directory a regular expression's paths must start with: its leading literal text
/// (escaped punctuation such as `\.` included) up to the last `/`. An unescaped `.` counts as
/// itself, so `../data/` walks that directory: the paths found start with the text typed,
/// which `.` matches, and nobody means "any directory with a three-letter name" by `../`.
fn literal_dir_prefix(pattern: &str) -> String {
    let mut literal = String::new();
    let mut chars = pattern.chars().peekable();
    if chars.peek() == Some(&'^') {
        chars.next();
    }
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => literal.push(e),
                _ => break,
            },
            // A quantifier applies to the character before it, which is then not fixed.
            '+' | '*' | '?' | '{' => {
                literal.pop();
                break;
            }
            '(' | ')' | '|' | '[' | ']' | '}' | '^' | '$' => break,
            other => literal.push(other),
        }
    }
    if has_top_level_alternation(pattern) {
        // Alternatives of the whole pattern can each start anywhere: search from the current
        // directory. (An alternation inside a group comes after the literal prefix.)
        return String::new();
    }
    match literal.rfind('/') {
        Some(i) => literal[..=i].to_owned(),
        None => String::new(),
    }
}

/// Whether `pattern` has a `|` outside every group and character class.
fn has_top_level_alternation(pattern: &str) -> bool {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '[' => in_class = true,
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Collects candidate file paths below `dir` (as typed, empty for the current directory).
fn walk(dir: &str, depth: Depth, level: usize, out: &mut Vec<String>) -> anyhow::Result<()> {
    let fs_dir = if dir.is_empty() { "." } else { dir };
    let entries =
        std::fs::read_dir(fs_dir).with_context(|| format!("cannot list directory {fs_dir}"))?;
    let (files_here, descend) = match depth {
        Depth::Exactly(n) => (level == n, level < n),
        Depth::AtMost(n) => (true, level < n),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list directory {fs_dir}"))?;
        // Non-UTF-8 names cannot be key values nor matched by `regex` on `str`.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let file_type = entry
            .file_type()
            .with_context(|| format!("cannot stat {dir}{name}"))?;
        names.push((name, file_type));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, file_type) in names {
        let path = format!("{dir}{name}");
        let is_dir = if file_type.is_symlink() {
            // Following links to directories is safe only when the depth is fixed.
            matches!(depth, Depth::Exactly(_)) && std::fs::metadata(&path).is_ok_and(|m| m.is_dir())
        } else {
            file_type.is_dir()
        };
        if is_dir {
            if descend {
                walk(&format!("{path}/"), depth, level + 1, out)?;
            }
        } else if files_here {
            out.push(path);
        }
    }
    Ok(())
}

/// The catalog's rules for key values, checked here so a dry run shows the problem too.
fn check_value(path: &str, key: &str, value: &str) -> anyhow::Result<()> {
    if value.is_empty()
        || value.len() > kiln_catalog::MAX_KEY_VALUE_BYTES
        || value.chars().any(|c| c == '/' || c.is_control())
    {
        bail!(
            "{path}: value {value:?} of key {key:?} is not a valid key value (1 to {} bytes, \
             no '/' nor control characters)",
            kiln_catalog::MAX_KEY_VALUE_BYTES
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_matchers_follow_the_typed_directory() {
        let cwd = std::fs::canonicalize(".").unwrap();
        let cwd = cwd.to_str().unwrap();
        // Relative: a stored absolute URI below the current directory matches.
        let m = UriMatcher::new("src/{}.rs", false).unwrap();
        assert!(m.is_match(&format!("{cwd}/src/main.rs")));
        assert!(m.is_match("src/main.rs"));
        assert!(!m.is_match(&format!("{cwd}/tests/main.rs")));
        assert!(
            !m.is_match(&format!("{cwd}/src/a/main.rs")),
            "{{}} stays in one component"
        );
        // No key needed; remote URIs match as stored.
        let s3 = UriMatcher::new("s3://bucket/dem/{}_{tile}.tif", false).unwrap();
        assert!(s3.is_match("s3://bucket/dem/srtm_n50e006.tif"));
        assert!(!s3.is_match("s3://bucket/other/srtm_n50e006.tif"));
        let re = UriMatcher::new(r"s3://bucket/.*\.tif", true).unwrap();
        assert!(re.is_match("s3://bucket/a/b.tif"));
        assert!(!re.is_match("s3://bucket/a/b.tiff"));
    }

    #[test]
    fn placeholder_patterns_compile_like_terracotta() {
        let c = Compiled::from_placeholders("data/{sensor}/{date}_{}_{band}.tif", true).unwrap();
        assert_eq!(c.root, "data/");
        assert_eq!(c.keys, ["sensor", "date", "band"]);
        assert!(matches!(c.depth, Depth::Exactly(1)));
        let caps = c.regex.captures("data/S2/20240101_x_y_B04.tif").unwrap();
        assert_eq!(&caps[1], "S2");
        assert_eq!(&caps[2], "20240101");
        assert_eq!(&caps[3], "B04");
        // `_` separates values, and `{}` does not cross directories.
        assert!(c.regex.captures("data/S_2/20240101_x_B04.tif").is_none());
        assert!(c.regex.captures("data/S2/2024_x/y_B04.tif").is_none());
    }

    #[test]
    fn repeated_keys_must_agree() {
        let c = Compiled::from_placeholders("{a}/{a}.tif", true).unwrap();
        assert_eq!(c.keys, ["a"]);
        assert_eq!(c.groups, [0, 0]);
        assert_eq!(c.root, "");
    }

    #[test]
    fn bad_placeholder_patterns_are_refused() {
        for bad in [
            "x/{}.tif",
            "x/{a.tif",
            "x/a}.tif",
            "x/{1}.tif",
            "x/{a:>3}.tif",
            "x.tif",
        ] {
            assert!(Compiled::from_placeholders(bad, true).is_err(), "{bad}");
        }
        let c = Compiled::from_placeholders("x/{{a}}_{b}.tif", true).unwrap();
        assert_eq!(c.keys, ["b"]);
        assert!(c.regex.is_match("x/{a}_1.tif"));
    }

    #[test]
    fn regex_roots_stop_at_the_first_operator() {
        assert_eq!(
            literal_dir_prefix(r"/data/x\.d/(?P<a>\w+)\.tif"),
            "/data/x.d/"
        );
        assert_eq!(literal_dir_prefix(r"^\.\./d/(?P<a>\w+)"), "../d/");
        assert_eq!(literal_dir_prefix(r"d/e?/(?P<a>\w+)"), "d/");
        assert_eq!(literal_dir_prefix(r"../d/(?P<a>.+)\.tif"), "../d/");
        assert_eq!(literal_dir_prefix(r"(?P<a>\w+)\.tif"), "");
        assert_eq!(literal_dir_prefix(r"a/b/(?P<k>x)|c/(?P<l>y)"), "");
        // An alternation inside a group does not move the root.
        assert_eq!(literal_dir_prefix(r"../d/(?P<k>ab|cd)\.tif"), "../d/");
        assert_eq!(literal_dir_prefix(r"../d/(?P<k>[|x]+)\.tif"), "../d/");
        assert_eq!(literal_dir_prefix(r"../d/(?P<k>\(|x)\.tif"), "../d/");
        assert_eq!(literal_dir_prefix(r"../d/(?P<k>x)\||y"), "");
        let c = Compiled::from_regex(r"d/(x)(?P<b>\w+)-(?P<a>\w+)\.tif", true).unwrap();
        assert_eq!(c.keys, ["b", "a"]);
        assert_eq!(c.groups, [usize::MAX, 0, 1]);
        assert!(Compiled::from_regex(r"d/(\w+)\.tif", true).is_err());
    }
}
