INSERT INTO products (sku, stock) VALUES ('tea', 10);
INSERT INTO products (sku, stock) VALUES ('cup', 3);
