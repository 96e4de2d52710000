-- Outbound webhook endpoints and deliveries; inbound endpoints, receipts and rejections.
SELECT 1;
