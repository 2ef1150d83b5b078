//! Unit tests of scopes, breadcrumbs and hubs.
use super::*;

#[test]
fn breadcrumb_ring_keeps_the_newest_in_order_and_bounds_memory() {
    let mut crumbs = Crumbs::default();
    for i in 0..1000 {
        crumbs.push(Breadcrumb::new(format!("c{i}")).into(), 10);
        assert!(crumbs.len < 20);
    }
    let kept: Vec<String> = iter_crumbs(crumbs.newest.as_ref(), 10)
        .map(|c| c.message.clone())
        .collect();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0], "c999");
    assert_eq!(kept[9], "c990");
}

#[test]
fn a_snapshot_taken_before_the_ring_is_rebuilt_keeps_its_breadcrumbs() {
    let mut crumbs = Crumbs::default();
    for i in 0..15 {
        crumbs.push(Breadcrumb::new(format!("c{i}")).into(), 10);
    }
    let snapshot = crumbs.newest.clone();
    for i in 15..20 {
        crumbs.push(Breadcrumb::new(format!("c{i}")).into(), 10);
    }
    assert_eq!(crumbs.len, 10, "rebuilt");
    let messages = |newest: Option<&Arc<CrumbNode>>| -> Vec<String> {
        iter_crumbs(newest, 10).map(|c| c.message.clone()).collect()
    };
    let now = messages(crumbs.newest.as_ref());
    assert_eq!(now.first().map(String::as_str), Some("c19"));
    assert_eq!(now.last().map(String::as_str), Some("c10"));
    let then = messages(snapshot.as_ref());
    assert_eq!(then.first().map(String::as_str), Some("c14"));
    assert_eq!(then.last().map(String::as_str), Some("c5"));
}

#[test]
fn a_ring_no_snapshot_shares_is_cut_in_place_and_frees_what_it_drops() {
    let mut crumbs = Crumbs::default();
    crumbs.push(
        Crumb::now("c0".into(), Some("test".into()), Level::Info),
        10,
    );
    let oldest = crumbs.newest.as_ref().map(Arc::downgrade).unwrap();
    for i in 1..19 {
        crumbs.push(
            Crumb::now(format!("c{i}"), Some("test".into()), Level::Info),
            10,
        );
    }
    let before_cut = crumbs.newest.as_ref().map(Arc::as_ptr);
    assert!(oldest.upgrade().is_some());
    crumbs.push(
        Crumb::now("c19".into(), Some("test".into()), Level::Info),
        10,
    );
    assert_eq!(crumbs.len, 10);
    assert!(oldest.upgrade().is_none(), "the dropped nodes are freed");
    // Cut, not copied: the node pushed before the cut is still the second.
    let second = crumbs
        .newest
        .as_ref()
        .and_then(|n| n.older.as_ref())
        .map(Arc::as_ptr);
    assert_eq!(second, before_cut);
    let kept: Vec<&str> = iter_crumbs(crumbs.newest.as_ref(), 100)
        .map(|c| c.message.as_str())
        .collect();
    assert_eq!(kept.len(), 10, "{kept:?}");
    assert_eq!((kept[0], kept[9]), ("c19", "c10"));
}

#[test]
fn a_kept_breadcrumb_becomes_the_breadcrumb_it_was_given() {
    let given = Breadcrumb::new("saved")
        .category("ui")
        .level(Level::Warning)
        .data("b", 2)
        .data("a", "one");
    let crumb = Crumb::from(given.clone());
    assert_eq!(crumb.to_breadcrumb(), given);

    let before = crate::time::rfc3339_millis(std::time::SystemTime::now());
    let mut stamped = Crumb::now(
        "x".repeat(10_000),
        Some("c".repeat(1_000).into()),
        Level::Debug,
    );
    stamped.data.push(("k".into(), Value::from(1)));
    stamped.data.push(("k".into(), Value::from(2)));
    stamped
        .data
        .push(("long".into(), Value::String("y".repeat(100_000))));
    stamped.bound();
    let made = stamped.to_breadcrumb();
    assert!(
        made.timestamp >= before && made.timestamp.ends_with('Z'),
        "{}",
        made.timestamp
    );
    let cut = |max: usize| max + '…'.len_utf8();
    assert_eq!(
        made.message.len(),
        cut(limits::MAX_BREADCRUMB_MESSAGE_BYTES)
    );
    assert_eq!(made.category.unwrap().len(), cut(limits::MAX_NAME_BYTES));
    assert_eq!(made.level, Level::Debug);
    assert_eq!(made.data["k"], 2, "a later key wins, as in a map");
    assert_eq!(
        made.data["long"].as_str().unwrap().len(),
        cut(limits::MAX_EXTRA_BYTES)
    );
}

#[test]
fn layers_override_base_and_merge_tags() {
    let hub = Hub::new();
    hub.configure(|s| {
        s.set_tag("a", "base");
        s.set_tag("b", "base");
        s.set_level(Some(Level::Warning));
    });
    let mut layer = Scope::default();
    layer.set_tag("b", "layer");
    layer.set_user(Some(User::with_id("7")));
    let snap = hub.snapshot(vec![Arc::new(layer)]);
    let merged = snap.merge();
    assert_eq!(merged.tags["a"], "base");
    assert_eq!(merged.tags["b"], "layer");
    assert_eq!(merged.user.unwrap().id.as_deref(), Some("7"));
    assert_eq!(merged.level, Some(Level::Warning));
}

#[test]
fn oversized_tag_values_are_cut_and_noted() {
    let mut scope = Scope::default();
    scope.set_tag("big", "x".repeat(1 << 20));
    assert!(scope.tags["big"].len() <= limits::MAX_TAG_VALUE_BYTES + 3);
    assert!(scope.tags["big"].ends_with('…'));
    assert_eq!(scope.truncated, vec!["tags.big".to_owned()]);
}

#[test]
fn concurrent_writers_lose_no_update() {
    let hub = Arc::new(Hub::new());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    hub.configure(|s| s.set_tag(format!("t{t}-{i}"), "v"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(hub.current_scope().tags.len(), 8 * 200);
}
