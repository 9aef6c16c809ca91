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

/// What a listing scan does after offering a key to a [`Pager`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Next,
    /// Continue at the first key at or after this one (past a common prefix).
    SkipTo(Vec<u8>),
    Stop,
}

/// Where an offered key goes.
enum Place {
    Outside,
    Prefix(String),
    Item,
}

/// Collects one listing page: keys are offered in order, keys that contain the delimiter
/// after the prefix fold into common prefixes, and after a common prefix the scan is told
/// to skip past all of its keys (a store seeks; a plain iteration passes them over).
pub struct Pager<T> {
    prefix: String,
    delimiter: Option<String>,
    max: usize,
    entries: Vec<Entry<T>>,
    truncated: bool,
}

impl<T> Pager<T> {
    pub fn new(prefix: &str, delimiter: Option<&str>, max: usize) -> Self {
        Pager {
            prefix: prefix.to_owned(),
            delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            max,
            entries: Vec::new(),
            truncated: false,
        }
    }

    /// How many more keys a scan needs: those the page can still show, and one more to tell
    /// whether it is truncated.
    pub fn wanted(&self) -> usize {
        self.max.saturating_sub(self.entries.len()).saturating_add(1)
    }

    /// Offers the next key in order with its item.
    pub fn offer(&mut self, key: &str, item: T) -> Step {
        let place = self.place(key);
        self.take(place, item)
    }

    /// Like [`Pager::offer`], but the item is made only if the page shows it (not for a
    /// key past the prefix, under a common prefix, or past a full page); an error making
    /// it is returned as it is.
    pub fn offer_with<E>(&mut self, key: &str, make: impl FnOnce() -> Result<T, E>) -> Result<Step, E> {
        let place = self.place(key);
        self.take_with(place, make)
    }

    fn place(&self, key: &str) -> Place {
        if !key.starts_with(&self.prefix) {
            return Place::Outside;
        }
        match common_prefix(key, &self.prefix, self.delimiter.as_deref()) {
            Some(cp) => Place::Prefix(cp.to_owned()),
            None => Place::Item,
        }
    }

    fn take(&mut self, place: Place, item: T) -> Step {
        match self.take_with(place, || Ok::<T, std::convert::Infallible>(item)) {
            Ok(step) => step,
            Err(never) => match never {},
        }
    }

    /// Takes a key in its place; `make` is called only for an item the page shows.
    fn take_with<E>(&mut self, place: Place, make: impl FnOnce() -> Result<T, E>) -> Result<Step, E> {
        // Asked for nothing: nothing, and nothing more to come (as AWS answers max-keys=0).
        if matches!(place, Place::Outside) || self.max == 0 {
            return Ok(Step::Stop);
        }
        if self.entries.len() == self.max {
            self.truncated = true;
            return Ok(Step::Stop);
        }
        Ok(match place {
            Place::Prefix(cp) => {
                let step = prefix_end(cp.as_bytes()).map_or(Step::Stop, Step::SkipTo);
                self.entries.push(Entry::CommonPrefix(cp));
                step
            }
            _ => {
                self.entries.push(Entry::Item(make()?));
                Step::Next
            }
        })
    }

    pub fn finish(self) -> Grouped<T> {
        Grouped { entries: self.entries, truncated: self.truncated }
    }

    /// The page, each item turned into a `U` by `f`.
    pub fn try_map<U, E>(self, mut f: impl FnMut(T) -> Result<U, E>) -> Result<Grouped<U>, E> {
        let entries = self
            .entries
            .into_iter()
            .map(|e| match e {
                Entry::Item(item) => f(item).map(Entry::Item),
                Entry::CommonPrefix(p) => Ok(Entry::CommonPrefix(p)),
            })
            .collect::<Result<Vec<_>, E>>()?;
        Ok(Grouped { entries, truncated: self.truncated })
    }
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
    let mut pager = Pager::new(prefix, delimiter, max);
    let mut skip_below: Option<Vec<u8>> = None;
    for item in items {
        let item = item?;
        let key = key_of(&item);
        if skip_under.is_some_and(|s| key.starts_with(s)) || skip_below.as_deref().is_some_and(|k| key.as_bytes() < k) {
            continue;
        }
        let place = pager.place(key);
        match pager.take(place, item) {
            Step::Next => {}
            Step::SkipTo(k) => skip_below = Some(k),
            Step::Stop => break,
        }
    }
    Ok(pager.finish())
}

/// Where a listing of keys under `prefix` starts: at `prefix`, or past `marker` (and past
/// everything under it when it is a common prefix); `None` when nothing can follow.
pub fn listing_start(prefix: &str, delimiter: Option<&str>, marker: Option<&str>) -> Option<Vec<u8>> {
    let marker = marker.filter(|m| *m >= prefix);
    match marker {
        None => Some(prefix.as_bytes().to_vec()),
        Some(m) => match marker_common_prefix(m, prefix, delimiter) {
            Some(cp) => prefix_end(cp.as_bytes()),
            None => {
                let mut next = m.as_bytes().to_vec();
                next.push(0);
                Some(next)
            }
        },
    }
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

    #[test]
    fn offer_with_pages_like_offer_and_makes_only_what_is_shown() {
        let keys = ["a/1", "a/2", "b", "c", "d/1", "e", "f", "z"];
        for (prefix, delim) in [("", Some("/")), ("", None), ("a", None), ("b", Some("/"))] {
            for max in 0..=keys.len() + 1 {
                let (mut eager, mut lazy) = (Pager::new(prefix, delim, max), Pager::new(prefix, delim, max));
                let (mut made, mut below) = (Vec::new(), None::<Vec<u8>>);
                for k in keys {
                    if below.as_ref().is_some_and(|b| k.as_bytes() < b.as_slice()) {
                        continue;
                    }
                    let a = eager.offer(k, k.to_string());
                    let b = lazy.offer_with(k, || {
                        made.push(k);
                        Ok::<_, ()>(k.to_string())
                    });
                    assert_eq!(Ok(&a), b.as_ref(), "{k} with prefix {prefix:?}, {delim:?}, max {max}");
                    match a {
                        Step::Next => {}
                        Step::SkipTo(to) => below = Some(to),
                        Step::Stop => break,
                    }
                }
                let (eager, lazy) = (eager.finish(), lazy.finish());
                assert_eq!(eager, lazy);
                let shown: Vec<&str> = lazy
                    .entries
                    .iter()
                    .filter_map(|e| match e {
                        Entry::Item(k) => Some(k.as_str()),
                        Entry::CommonPrefix(_) => None,
                    })
                    .collect();
                assert_eq!(made, shown, "items made for prefix {prefix:?}, {delim:?}, max {max}");
            }
        }
        // An error making an item is the caller's.
        let mut pager = Pager::<String>::new("", None, 10);
        assert_eq!(pager.offer_with("a", || Err("bad")), Err("bad"));
    }
}
