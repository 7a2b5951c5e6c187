//! Per-host sliding window of the last `monitoring_samples` readings.

use std::collections::VecDeque;

use crate::node_source::Reading;

/// The last `capacity` readings of one host, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    readings: VecDeque<Reading>,
    capacity: usize,
}

impl Window {
    /// Creates an empty window; a capacity of 0 is treated as 1.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Window {
            readings: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends a reading, dropping the oldest once the window is full.
    pub fn push(&mut self, reading: Reading) {
        if self.readings.len() == self.capacity {
            self.readings.pop_front();
        }
        self.readings.push_back(reading);
    }

    /// True when the window is full and every reading in it is `Down`.
    pub fn all_down(&self) -> bool {
        self.readings.len() == self.capacity && self.readings.iter().all(|r| *r == Reading::Down)
    }

    pub fn latest(&self) -> Option<Reading> {
        self.readings.back().copied()
    }

    /// Forgets every reading, so the next decision needs a full window of fresh ones.
    pub fn clear(&mut self) {
        self.readings.clear();
    }

    pub fn len(&self) -> usize {
        self.readings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Reading::{Down, NoData, Up};

    fn window_of(capacity: usize, readings: &[Reading]) -> Window {
        let mut window = Window::new(capacity);
        for reading in readings {
            window.push(*reading);
        }
        window
    }

    #[test]
    fn empty_window_is_not_down() {
        assert!(!Window::new(3).all_down());
    }

    #[test]
    fn partial_window_is_not_down() {
        assert!(!window_of(3, &[Down, Down]).all_down());
    }

    #[test]
    fn full_window_of_down_is_down() {
        assert!(window_of(3, &[Down, Down, Down]).all_down());
    }

    #[test]
    fn no_data_breaks_a_run() {
        let mut window = window_of(3, &[Down, NoData, Down]);
        assert!(!window.all_down());
        window.push(Down);
        assert!(!window.all_down(), "NoData is still inside the window");
        window.push(Down);
        assert!(window.all_down());
    }

    #[test]
    fn oldest_reading_is_dropped() {
        let window = window_of(2, &[Up, Down, Down]);
        assert_eq!(window.len(), 2);
        assert!(window.all_down());
    }

    #[test]
    fn up_in_window_is_not_down() {
        assert!(!window_of(3, &[Down, Up, Down]).all_down());
    }

    #[test]
    fn clear_needs_fresh_readings() {
        let mut window = window_of(2, &[Down, Down]);
        window.clear();
        assert!(window.is_empty());
        window.push(Down);
        assert!(!window.all_down());
        window.push(Down);
        assert!(window.all_down());
    }

    #[test]
    fn capacity_zero_acts_as_one() {
        let window = window_of(0, &[Down]);
        assert!(window.all_down());
        assert_eq!(window.latest(), Some(Down));
    }
}
