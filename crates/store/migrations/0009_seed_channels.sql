-- The channel taxonomy and the global default rules. Kept identical to
-- `tally_core::channel::TAXONOMY` and `default_rules()` (a test compares them).

INSERT INTO channel_taxonomy (code, family, is_paid, display_name) VALUES
    ('paid_search_google', 'paid_search', true, 'Google Ads (search)'),
    ('paid_search_microsoft', 'paid_search', true, 'Microsoft Advertising (search)'),
    ('paid_search_other', 'paid_search', true, 'Paid search (other)'),
    ('paid_social_meta', 'paid_social', true, 'Meta Ads (Facebook, Instagram)'),
    ('paid_social_tiktok', 'paid_social', true, 'TikTok Ads'),
    ('paid_social_linkedin', 'paid_social', true, 'LinkedIn Ads'),
    ('paid_social_other', 'paid_social', true, 'Paid social (other)'),
    ('display_google', 'display', true, 'Google display'),
    ('display_other', 'display', true, 'Display (other)'),
    ('organic_search', 'organic_search', false, 'Organic search'),
    ('organic_social', 'organic_social', false, 'Organic social'),
    ('email', 'email', false, 'E-mail'),
    ('sms', 'sms', false, 'SMS'),
    ('affiliate', 'affiliate', true, 'Affiliate'),
    ('referral', 'referral', false, 'Referral'),
    ('direct', 'direct', false, 'Direct'),
    ('unknown', 'unknown', false, 'Unknown');
