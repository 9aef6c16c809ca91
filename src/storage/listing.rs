//! Delimiter grouping shared by every store's listings: walks entries in key order and folds
//! keys that contain the delimiter after the prefix into common prefixes.

/// One line of a listing page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<T> {
    Item(T),
    CommonPrefix(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouped<T> {
    pub entries: Vec<Entry<T>>,
    pub truncated: bool,
}

/// Groups `items` (sorted by key, starting at or after `prefix`) into a page of at most `max`
/// entries. Iteration stops at the first key outside `prefix`. Keys under `skip_under` (a
/// common prefix the previous page ended with) are passed over.
pub fn group<T, E>(
    items: impl IntoIterator<Item = Result<T, E>>,
    key_of: impl Fn(&T) -> &str,
    prefix: &str,
    delimiter: Option<&str>,
    skip_under: Option<&str>,
    max: usize,
) -> Result<Grouped<T>, E> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut entries = Vec::new();
    // Asked for nothing: nothing, and nothing more to come (as AWS answers max-keys=0).
    if max == 0 {
        return Ok(Grouped { entries, truncated: false });
    }
    let mut last_prefix: Option<String> = None;
    let mut truncated = false;
    for item in items {
        let item = item?;
        let key = key_of(&item);
        if !key.starts_with(prefix) {
            break;
        }
        if skip_under.is_some_and(|s| key.starts_with(s)) {
            continue;
        }
        let entry = match common_prefix(key, prefix, delimiter) {
            Some(cp) if last_prefix.as_deref() == Some(cp) => continue,
            Some(cp) => {
                let cp = cp.to_owned();
                last_prefix = Some(cp.clone());
                Entry::CommonPrefix(cp)
            }
            None => Entry::Item(item),
        };
        if entries.len() == max {
            truncated = true;
            break;
        }
        entries.push(entry);
    }
    Ok(Grouped { entries, truncated })
}

/// The common prefix `key` (which starts with `prefix`) is listed under: up to and including
/// the first `delimiter` after `prefix`, if there is one.
pub fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    key.get(prefix.len()..)?.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

/// The smallest byte string greater than every string that starts with `prefix`; `None` when
/// there is none (an empty prefix, or one of only 0xFF bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The common prefix a marker stands for, when the marker is one: a page that ended with the
/// common prefix `photos/` continues with `marker = photos/`, and nothing under it may be
/// listed again.
pub fn marker_common_prefix<'a>(marker: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = marker.strip_prefix(prefix)?;
    let i = rest.find(d)?;
    (i + d.len() == rest.len()).then_some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keys: &[&str], prefix: &str, delim: Option<&str>, skip: Option<&str>, max: usize) -> (Vec<String>, bool) {
        let items = keys.iter().map(|k| Ok::<_, ()>(k.to_string()));
        let g = group(items, |s| s.as_str(), prefix, delim, skip, max).expect("infallible");
        let shown = g
            .entries
            .into_iter()
            .map(|e| match e {
                Entry::Item(k) => k,
                Entry::CommonPrefix(p) => format!("P:{p}"),
            })
            .collect();
        (shown, g.truncated)
    }

    #[test]
    fn groups_by_delimiter_after_prefix() {
        let keys = ["a/1", "a/2", "b", "c/x/1", "c/y", "d"];
        assert_eq!(
            run(&keys, "", Some("/"), None, 10),
            (vec!["P:a/".into(), "b".into(), "P:c/".into(), "d".into()], false)
        );
        assert_eq!(run(&keys[3..], "c/", Some("/"), None, 10), (vec!["P:c/x/".into(), "c/y".into()], false));
        assert_eq!(run(&keys, "", None, None, 10).0.len(), 6);
    }

    #[test]
    fn truncates_only_when_more_entries_follow() {
        let keys = ["a/1", "a/2", "b"];
        assert_eq!(run(&keys, "", Some("/"), None, 1), (vec!["P:a/".into()], true));
        assert_eq!(run(&keys, "", Some("/"), None, 2), (vec!["P:a/".into(), "b".into()], false));
        assert_eq!(run(&keys[..2], "", Some("/"), None, 1), (vec!["P:a/".into()], false));
        assert_eq!(run(&keys, "", None, None, 0), (vec![], false));
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "a/", None), None);
    }

    #[test]
    fn markers_that_are_common_prefixes() {
        assert_eq!(marker_common_prefix("a/", "", Some("/")), Some("a/"));
        assert_eq!(marker_common_prefix("p/a/", "p/", Some("/")), Some("p/a/"));
        assert_eq!(marker_common_prefix("a/b", "", Some("/")), None);
        assert_eq!(marker_common_prefix("a/b/", "", Some("/")), None);
        assert_eq!(marker_common_prefix("a/", "", None), None);
        assert_eq!(marker_common_prefix("a/", "b", Some("/")), None);
    }

    #[test]
    fn skips_the_previous_common_prefix_and_stops_outside_prefix() {
        let keys = ["a/1", "a/2", "b"];
        assert_eq!(run(&keys, "", Some("/"), Some("a/"), 10), (vec!["b".into()], false));
        assert_eq!(run(&keys, "a", None, None, 10), (vec!["a/1".into(), "a/2".into()], false));
    }
}
