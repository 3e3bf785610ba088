-- Leasing from a rate-limited campaign counts its leases of the last minute (up to the limit): found by campaign
-- and lease time here instead of by reading every job of the campaign. Queued jobs (never leased) are not in it,
-- so a campaign's fan-out does not write it.
CREATE INDEX jobs_campaign_leased_idx ON jobs (campaign_id, leased_at) WHERE leased_at IS NOT NULL;
