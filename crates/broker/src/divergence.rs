//! Where a follower's log stops matching its leader's, decided from leader-epoch caches
//! alone (KIP-101, KIP-279, KIP-595). Pure functions: the leader validates each follower
//! fetch with [`validate_fetch`]; the follower turns the leader's answer into a cut with
//! [`truncation_target`] and refuses a cut below its high watermark with
//! [`check_truncation`].

/// An epoch and the offset where it ends in some log (the next epoch's start, or the
/// log end for the latest epoch).
pub type EpochEnd = (i32, u64);

/// The leader's answer to a fetch whose log does not match at its last fetched epoch:
/// the largest epoch <= that epoch the leader knows and where it ends there; `None` when
/// the leader knows no epoch that old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diverging(pub Option<EpochEnd>);

/// KIP-595 fetch validation on the leader. A follower that holds `last_fetched_epoch` up
/// to `fetch_offset` matches the leader's log only if the leader has that very epoch and
/// it does not end before `fetch_offset` (`leader_end` is the leader's
/// `end_offset_for_epoch(last_fetched_epoch)`).
pub fn validate_fetch(
    leader_end: Option<EpochEnd>,
    last_fetched_epoch: i32,
    fetch_offset: u64,
) -> Option<Diverging> {
    match leader_end {
        Some((epoch, end)) if epoch == last_fetched_epoch && end >= fetch_offset => None,
        other => Some(Diverging(other)),
    }
}

/// Where a follower cuts its log given the leader's end of an epoch (`leader_end`, from
/// OffsetForLeaderEpoch or a diverging fetch): at most where that epoch ends on the
/// leader and at most where the follower's own data of that epoch (or the largest
/// older one it has) ends; nothing past its log end. When the leader knows no epoch that
/// old, the follower's high watermark (KIP-101's fallback), or the leader's log end when
/// it is known and shorter (a leader elected uncleanly with less). A follower that holds an
/// older epoch than the leader named gets a cut at its own epoch's end and is validated
/// again by its next fetch, so repeated fetches converge on the common prefix.
pub fn truncation_target(
    leader_end: Option<EpochEnd>,
    own_end: impl Fn(i32) -> Option<EpochEnd>,
    log_end: u64,
    high_watermark: u64,
    leader_log_end: Option<u64>,
) -> u64 {
    let target = match leader_end {
        None => leader_log_end.map_or(high_watermark, |end| end.min(high_watermark)),
        Some((epoch, end)) => match own_end(epoch) {
            Some((_, own)) => end.min(own),
            None => end,
        },
    };
    target.min(log_end)
}

/// A follower may cut its log at `target` only if that keeps everything below its high
/// watermark: a leader that lacks committed records (an emptied store, a bug) must not
/// make a replica drop them. The exception is an operator's unclean election: data this
/// replica wrote before it (`latest_epoch` < `unclean_leader_epoch`) may go.
pub fn check_truncation(
    target: u64,
    high_watermark: u64,
    latest_epoch: Option<i32>,
    unclean_leader_epoch: Option<i32>,
) -> Result<(), u64> {
    if target >= high_watermark {
        return Ok(());
    }
    let before_unclean = match (latest_epoch, unclean_leader_epoch) {
        (Some(mine), Some(unclean)) => mine < unclean,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if before_unclean {
        Ok(())
    } else {
        Err(high_watermark)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A log's epoch cache (epoch -> start) and its end, answering end-of-epoch queries
    /// as `PartitionLog::end_offset_for_epoch` does.
    fn ends(epochs: &[(i32, u64)], log_end: u64) -> impl Fn(i32) -> Option<EpochEnd> {
        let cache: BTreeMap<i32, u64> = epochs.iter().copied().collect();
        move |epoch| {
            let (found, _) = cache.range(..=epoch).next_back()?;
            let end = cache.range(found + 1..).next().map_or(log_end, |(_, s)| *s);
            Some((*found, end))
        }
    }

    #[test]
    fn a_fetch_matching_the_leaders_epoch_is_served() {
        let leader = ends(&[(1, 0), (3, 50)], 80);
        assert_eq!(validate_fetch(leader(3), 3, 80), None);
        assert_eq!(validate_fetch(leader(1), 1, 50), None);
        assert_eq!(validate_fetch(leader(1), 1, 20), None);
    }

    #[test]
    fn a_follower_past_the_end_of_its_epoch_on_the_leader_diverges() {
        // The follower appended epoch-1 batches up to 60 from a deposed leader; the new
        // leader's epoch 1 ended at 50 (epoch 3 started there).
        let leader = ends(&[(1, 0), (3, 50)], 80);
        assert_eq!(
            validate_fetch(leader(1), 1, 60),
            Some(Diverging(Some((1, 50))))
        );
        let follower = ends(&[(1, 0)], 60);
        assert_eq!(truncation_target(Some((1, 50)), follower, 60, 40, None), 50);
    }

    #[test]
    fn an_epoch_the_leader_never_had_diverges_at_the_largest_older_one() {
        // The follower holds epoch 2 (written by a leader whose data was lost); the
        // leader went from epoch 1 straight to 3.
        let leader = ends(&[(1, 0), (3, 40)], 90);
        assert_eq!(
            validate_fetch(leader(2), 2, 55),
            Some(Diverging(Some((1, 40))))
        );
        let follower = ends(&[(1, 0), (2, 45)], 55);
        // Epoch 1 ends at 40 on the leader and at 45 on the follower: cut at 40.
        assert_eq!(
            truncation_target(Some((1, 40)), &follower, 55, 30, None),
            40
        );
    }

    #[test]
    fn a_follower_with_only_older_epochs_cuts_at_its_own_end_and_is_checked_again() {
        // The leader names epoch 4, the follower only has up to epoch 2 (ending at 70).
        let follower = ends(&[(1, 0), (2, 30)], 70);
        assert_eq!(
            truncation_target(Some((4, 100)), &follower, 70, 10, None),
            70
        );
        assert_eq!(
            truncation_target(Some((4, 60)), &follower, 70, 10, None),
            60
        );
    }

    #[test]
    fn a_leader_without_the_epoch_falls_back_to_the_high_watermark() {
        let follower = ends(&[(5, 0)], 70);
        assert_eq!(truncation_target(None, &follower, 70, 42, None), 42);
        assert_eq!(truncation_target(None, &follower, 30, 42, None), 30);
        // An uncleanly elected leader with an empty log: everything goes (if allowed).
        assert_eq!(truncation_target(None, &follower, 70, 42, Some(0)), 0);
        assert_eq!(truncation_target(None, &follower, 70, 42, Some(50)), 42);
    }

    #[test]
    fn no_cut_below_the_high_watermark_unless_an_unclean_election_came_after_the_data() {
        assert_eq!(check_truncation(100, 100, Some(3), None), Ok(()));
        assert_eq!(check_truncation(0, 100, Some(3), None), Err(100));
        // The operator elected an unclean leader at epoch 5; this replica's data is from
        // epoch 3, so it may go.
        assert_eq!(check_truncation(0, 100, Some(3), Some(5)), Ok(()));
        // Data written at or after the unclean election is protected again.
        assert_eq!(check_truncation(0, 100, Some(5), Some(5)), Err(100));
    }
}
