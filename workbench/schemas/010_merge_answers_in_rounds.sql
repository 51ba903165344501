-- Migration 010: "Are these two the same value?" becomes a judging round of the participant's page
-- (round `same_value`). Its answers carry the round's key `app:<participant>:same_value:<item>` like the other
-- rounds' judgements (workbench/store/participation.py), and the unique (deliberation_id, source_key)
-- makes a repeated submission find the stored answer instead of adding a second one. LLM verdicts
-- have no key (NULL never clashes).

ALTER TABLE merge_judgements ADD COLUMN IF NOT EXISTS source_key VARCHAR;
CREATE UNIQUE INDEX IF NOT EXISTS merge_judgements_source ON merge_judgements (deliberation_id, source_key);
