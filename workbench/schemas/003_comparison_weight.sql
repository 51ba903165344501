-- Migration 003: imported comparisons may carry a weight (a number >= 0; 1 for a direct choice).
ALTER TABLE comparisons ADD COLUMN IF NOT EXISTS weight DOUBLE DEFAULT 1.0;
