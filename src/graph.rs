//! Dependency graphs of campaigns: cycle detection and level order.
//!
//! Nodes are any copyable, ordered ids (event UUIDs in the engine, event
//! keys in manifests). An edge `(from, to)` means `to` needs `from`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// Groups `nodes` into levels: level 0 holds the nodes with no needs, level
/// k the nodes whose needs all lie in earlier levels. Nodes of one level can
/// run in parallel. Within a level, nodes keep the order of `nodes`.
///
/// Returns `Err(cycle)` when the edges contain a cycle; see [`find_cycle`].
pub fn levels<N>(nodes: &[N], edges: &[(N, N)]) -> Result<Vec<Vec<N>>, Vec<N>>
where
    N: Copy + Ord + Hash,
{
    if let Some(cycle) = find_cycle(nodes, edges) {
        return Err(cycle);
    }
    let position: HashMap<N, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut graph: DiGraphMap<N, ()> = DiGraphMap::new();
    for n in nodes {
        graph.add_node(*n);
    }
    for (from, to) in edges {
        graph.add_edge(*from, *to, ());
    }
    let order = petgraph::algo::toposort(&graph, None).map_err(|c| vec![c.node_id()])?;
    let mut level_of: HashMap<N, usize> = HashMap::new();
    for n in &order {
        let level = graph
            .neighbors_directed(*n, petgraph::Direction::Incoming)
            .map(|need| level_of[&need] + 1)
            .max()
            .unwrap_or(0);
        level_of.insert(*n, level);
    }
    let mut grouped: BTreeMap<usize, Vec<N>> = BTreeMap::new();
    for (n, level) in level_of {
        grouped.entry(level).or_default().push(n);
    }
    Ok(grouped
        .into_values()
        .map(|mut level| {
            level.sort_by_key(|n| position.get(n).copied().unwrap_or(usize::MAX));
            level
        })
        .collect())
}

/// Finds one dependency cycle, if any, spelled in dependency order with its
/// first node repeated at the end: for edges `review → deploy` and
/// `deploy → review` it returns `[deploy, review, deploy]` or
/// `[review, deploy, review]`. The cycle starts at its smallest node by
/// `nodes` order, so the answer is deterministic.
pub fn find_cycle<N>(nodes: &[N], edges: &[(N, N)]) -> Option<Vec<N>>
where
    N: Copy + Ord + Hash,
{
    let position: HashMap<N, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let rank = |n: &N| position.get(n).copied().unwrap_or(usize::MAX);
    let mut graph: DiGraphMap<N, ()> = DiGraphMap::new();
    for n in nodes {
        graph.add_node(*n);
    }
    for (from, to) in edges {
        if from == to {
            return Some(vec![*from, *to]);
        }
        graph.add_edge(*from, *to, ());
    }
    let scc = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .min_by_key(|c| c.iter().map(rank).min())?;
    let members: std::collections::HashSet<N> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| rank(n))?;
    // Breadth-first search inside the component for the shortest way back to
    // `start`; the component is strongly connected, so one exists.
    let mut parent: HashMap<N, N> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<N> = graph
            .neighbors_directed(n, petgraph::Direction::Outgoing)
            .filter(|m| members.contains(m))
            .collect();
        next.sort_by_key(|m| rank(m));
        for m in next {
            if m == start {
                // Walk back from `n` to `start`, then read it forwards.
                let mut back = vec![n];
                while let Some(prev) = parent.get(back.last()?) {
                    back.push(*prev);
                }
                back.reverse();
                back.push(start);
                return Some(back);
            }
            if m != start && !parent.contains_key(&m) {
                parent.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_levels() {
        // A → B, A → C, B → D, C → D
        let levels = levels(
            &["A", "B", "C", "D"],
            &[("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")],
        )
        .unwrap();
        assert_eq!(levels, vec![vec!["A"], vec!["B", "C"], vec!["D"]]);
    }

    #[test]
    fn level_is_longest_path() {
        // A → B → C and A → C: C is on level 2.
        let levels = levels(&["C", "B", "A"], &[("A", "B"), ("B", "C"), ("A", "C")]).unwrap();
        assert_eq!(levels, vec![vec!["A"], vec!["B"], vec!["C"]]);
    }

    #[test]
    fn independent_nodes_share_level_zero_in_input_order() {
        let levels = levels(&["x", "a", "m"], &[]).unwrap();
        assert_eq!(levels, vec![vec!["x", "a", "m"]]);
    }

    #[test]
    fn two_cycle_is_spelled_out() {
        let cycle = find_cycle(
            &["review", "deploy"],
            &[("review", "deploy"), ("deploy", "review")],
        )
        .unwrap();
        assert_eq!(cycle, vec!["review", "deploy", "review"]);
    }

    #[test]
    fn longer_cycle_in_dependency_order() {
        // a → b → c → a, plus a side edge a → d
        let cycle = find_cycle(
            &["d", "c", "a", "b"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("a", "d")],
        )
        .unwrap();
        assert_eq!(cycle, vec!["c", "a", "b", "c"]);
        for pair in cycle.windows(2) {
            assert!([("a", "b"), ("b", "c"), ("c", "a")].contains(&(pair[0], pair[1])));
        }
    }

    #[test]
    fn self_loop_and_acyclic() {
        assert_eq!(find_cycle(&["a"], &[("a", "a")]).unwrap(), vec!["a", "a"]);
        assert!(find_cycle(&["a", "b"], &[("a", "b")]).is_none());
        assert!(levels(&["a", "b"], &[("a", "b"), ("b", "a")]).is_err());
    }
}
