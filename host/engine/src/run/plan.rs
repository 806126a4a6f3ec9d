//! Frame planning: which nodes tick in the next frame, and what each finds
//! in its inbox. Plain functions over the run's pending messages.

use weft_runtime::Message;

/// The nodes that tick in the next frame, in graph order: every node that
/// may run now (`runnable`: not paused) and has messages pending, and every
/// runnable `every_tick` node. A `deferred` node's messages wait while any
/// other runnable node has messages: it ticks once the rest of the run is
/// done.
pub(crate) fn active_nodes(
    pending: &[Vec<Message>],
    every_tick: impl Fn(usize) -> bool,
    deferred: impl Fn(usize) -> bool,
    runnable: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let busy = |i: usize| runnable(i) && !pending[i].is_empty();
    let others_busy = (0..pending.len()).any(|i| !deferred(i) && busy(i));
    (0..pending.len())
        .filter(|&i| {
            if deferred(i) {
                busy(i) && !others_busy
            } else {
                busy(i) || (runnable(i) && every_tick(i))
            }
        })
        .collect()
}

/// Whether the run has nothing left to deliver.
pub(crate) fn is_done(pending: &[Vec<Message>]) -> bool {
    pending.iter().all(Vec::is_empty)
}

/// Whether every node holding messages is held by a pause (and at least
/// one holds some): the run waits for a resume.
pub(crate) fn held_by_pauses(pending: &[Vec<Message>], runnable: impl Fn(usize) -> bool) -> bool {
    !is_done(pending) && !(0..pending.len()).any(|i| !pending[i].is_empty() && runnable(i))
}

/// The inboxes of `active` nodes, taken out of `pending`: each node's
/// waiting budget notices first, then its messages. Notices never make a
/// node tick; they wait for its next tick.
pub(crate) fn take_inboxes(
    active: &[usize],
    pending: &mut [Vec<Message>],
    notices: &mut [Vec<Message>],
) -> Vec<Vec<Message>> {
    active
        .iter()
        .map(|&i| {
            let mut inbox = std::mem::take(&mut notices[i]);
            inbox.append(&mut pending[i]);
            inbox
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Message {
        Message {
            id: id.into(),
            from: "user".into(),
            kind: "user".into(),
            body: "{}".into(),
        }
    }

    #[test]
    fn nodes_with_messages_and_every_tick_nodes_tick_in_graph_order() {
        let pending = vec![vec![], vec![msg("a")], vec![], vec![msg("b"), msg("c")]];
        let active = active_nodes(&pending, |i| i == 2, |_| false, |_| true);
        assert_eq!(active, vec![1, 2, 3]);
    }

    #[test]
    fn paused_nodes_do_not_tick_and_a_run_held_only_by_pauses_waits() {
        let pending = vec![vec![msg("a")], vec![], vec![msg("b")]];
        let runnable = |i: usize| i != 0;
        assert_eq!(
            active_nodes(&pending, |_| false, |_| false, runnable),
            vec![2]
        );
        assert!(!held_by_pauses(&pending, runnable));
        let only_paused = vec![vec![msg("a")], vec![], vec![]];
        assert!(held_by_pauses(&only_paused, runnable));
        // A paused every_tick node does not tick either.
        assert!(active_nodes(&only_paused, |_| true, |_| false, runnable)[..] == [1, 2]);
        assert!(!held_by_pauses(&[vec![], vec![]], |_| false));
    }

    #[test]
    fn deferred_nodes_wait_until_no_other_runnable_node_has_messages() {
        let deferred = |i: usize| i == 0;
        let every_tick = |i: usize| i == 3;
        // Node 1 still has work: the deferred node 0 waits, the every_tick
        // node 3 ticks as always.
        let pending = vec![vec![msg("memo")], vec![msg("job")], vec![], vec![]];
        assert_eq!(
            active_nodes(&pending, every_tick, deferred, |_| true),
            vec![1, 3]
        );
        // Nothing else is pending: now it ticks (with the every_tick node).
        let pending = vec![vec![msg("memo")], vec![], vec![], vec![]];
        assert_eq!(
            active_nodes(&pending, every_tick, deferred, |_| true),
            vec![0, 3]
        );
        // The only other work is held by a pause: the deferred node goes on.
        let pending = vec![vec![msg("memo")], vec![msg("job")], vec![], vec![]];
        assert_eq!(
            active_nodes(&pending, every_tick, deferred, |i| i != 1),
            vec![0, 3]
        );
        // Two deferred nodes do not hold each other back.
        let pending = vec![vec![msg("memo")], vec![], vec![msg("audit")]];
        assert_eq!(
            active_nodes(&pending, |_| false, |i| i != 1, |_| true),
            vec![0, 2]
        );
        assert!(!is_done(&pending));
    }

    #[test]
    fn notices_come_first_and_never_cause_a_tick() {
        let mut pending = vec![vec![], vec![msg("m")]];
        let mut notices = vec![vec![msg("n0")], vec![msg("n1")]];
        let active = active_nodes(&pending, |_| false, |_| false, |_| true);
        assert_eq!(active, vec![1]);
        let inboxes = take_inboxes(&active, &mut pending, &mut notices);
        let ids: Vec<&str> = inboxes[0].iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["n1", "m"]);
        assert!(is_done(&pending));
        // Node 0's notice waits for its next tick.
        assert_eq!(notices[0].len(), 1);
        assert!(notices[1].is_empty());
    }
}
