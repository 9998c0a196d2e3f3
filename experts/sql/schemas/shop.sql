CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT,
  email TEXT,
  city TEXT,
  country TEXT,
  signup_date DATE
);

CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  name TEXT,
  category TEXT,
  price NUMERIC(10, 2),
  stock INTEGER
);

CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER REFERENCES customers (id),
  order_date DATE,
  status TEXT,
  total NUMERIC(10, 2)
);

CREATE TABLE order_items (
  order_id INTEGER REFERENCES orders (id),
  product_id INTEGER REFERENCES products (id),
  quantity INTEGER,
  unit_price NUMERIC(10, 2),
  PRIMARY KEY (order_id, product_id)
);
