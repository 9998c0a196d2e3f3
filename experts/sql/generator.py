"""The ``sql`` generator: questions about four small Postgres schemas → SQL queries.

The schemas (``shop``, ``hr``, ``library``, ``flights``) and their fixture rows are defined here and
written to the expert's ``schemas`` folder (``<name>.sql`` DDL, ``<name>.data.sql`` INSERTs). Rows are
built from a fixed seed, so thresholds in questions can be drawn from the data (results are rarely
empty). A prompt's ``Schema`` field is the DDL text of its schema.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expertkit.authoring.generators import Picker, Record, Templates, Vocab, build_splits, fill
from expertkit.core.fileio import atomic_write_text

if TYPE_CHECKING:
    from expertkit.expert import Expert

SCHEMA_NAMES: tuple[str, ...] = ("shop", "hr", "library", "flights")

# ---------------------------------------------------------------------- DDL
DDL: dict[str, str] = {
    "shop": """CREATE TABLE customers (
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
);""",
    "hr": """CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  name TEXT,
  location TEXT,
  budget NUMERIC(12, 2)
);

CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  first_name TEXT,
  last_name TEXT,
  department_id INTEGER REFERENCES departments (id),
  manager_id INTEGER,
  job_title TEXT,
  salary NUMERIC(10, 2),
  hire_date DATE
);

CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  name TEXT,
  department_id INTEGER REFERENCES departments (id),
  status TEXT,
  start_date DATE,
  end_date DATE,
  budget NUMERIC(12, 2)
);

CREATE TABLE assignments (
  employee_id INTEGER REFERENCES employees (id),
  project_id INTEGER REFERENCES projects (id),
  role TEXT,
  hours INTEGER,
  PRIMARY KEY (employee_id, project_id)
);""",
    "library": """CREATE TABLE authors (
  id INTEGER PRIMARY KEY,
  name TEXT,
  country TEXT,
  birth_year INTEGER
);

CREATE TABLE books (
  id INTEGER PRIMARY KEY,
  title TEXT,
  author_id INTEGER REFERENCES authors (id),
  genre TEXT,
  published_year INTEGER,
  pages INTEGER
);

CREATE TABLE members (
  id INTEGER PRIMARY KEY,
  name TEXT,
  city TEXT,
  membership TEXT,
  joined_on DATE
);

CREATE TABLE loans (
  id INTEGER PRIMARY KEY,
  book_id INTEGER REFERENCES books (id),
  member_id INTEGER REFERENCES members (id),
  loan_date DATE,
  due_date DATE,
  returned_on DATE
);""",
    "flights": """CREATE TABLE airports (
  code TEXT PRIMARY KEY,
  name TEXT,
  city TEXT,
  country TEXT
);

CREATE TABLE airlines (
  code TEXT PRIMARY KEY,
  name TEXT,
  country TEXT
);

CREATE TABLE flights (
  id INTEGER PRIMARY KEY,
  flight_number TEXT,
  airline_code TEXT REFERENCES airlines (code),
  origin TEXT REFERENCES airports (code),
  destination TEXT REFERENCES airports (code),
  departure_time TIMESTAMP,
  duration_min INTEGER,
  distance_km INTEGER,
  status TEXT
);

CREATE TABLE bookings (
  id INTEGER PRIMARY KEY,
  flight_id INTEGER REFERENCES flights (id),
  passenger_name TEXT,
  seat_class TEXT,
  price NUMERIC(10, 2),
  booked_on DATE
);""",
}

# ---------------------------------------------------------------------- vocabularies (data and questions)
FIRST = ("Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji", "Laura",
         "Marco", "Nadia", "Omar", "Paula", "Quentin", "Rosa", "Samir", "Tara", "Ugo", "Vera", "Walter", "Xenia",
         "Yusuf", "Zoe", "Aaron", "Bianca", "Chen", "Dora", "Emil", "Fatima", "Gustav", "Hana", "Igor", "Julia",
         "Karim", "Lena", "Mateo", "Nora")
LAST = ("Smith", "Garcia", "Muller", "Rossi", "Dubois", "Silva", "Novak", "Kowalski", "Jensen", "Nielsen",
        "Tanaka", "Kim", "Patel", "Khan", "Cohen", "Murphy", "Walsh", "Berg", "Lindqvist", "Costa", "Moreau",
        "Schmidt", "Romano", "Horvat", "Popescu", "Ivanova", "Larsen", "Okafor", "Mensah", "Haddad")

V: dict[str, Vocab] = {
    "shop_city": Vocab(("Paris", "Lyon", "Berlin", "Munich", "Madrid", "Barcelona", "Rome", "Milan", "London",
                        "Manchester", "New York", "Chicago", "Toronto", "Lisbon", "Amsterdam", "Dublin"),
                       ("Porto", "Vancouver", "Warsaw")),
    "shop_country": Vocab(("France", "Germany", "Spain", "Italy", "United Kingdom", "United States", "Canada",
                           "Netherlands", "Ireland"), ("Portugal", "Poland")),
    "category": Vocab(("Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"),
                      ("Garden", "Office")),
    "order_status": Vocab(("pending", "paid", "shipped", "delivered", "cancelled"), ("refunded",)),
    "department": Vocab(("Engineering", "Sales", "Marketing", "Finance", "Human Resources", "Support",
                         "Operations", "Design"), ("Legal", "Research")),
    "location": Vocab(("Boston", "Austin", "Denver", "Seattle", "Atlanta"), ("Phoenix",)),
    "job_title": Vocab(("Software Engineer", "Senior Engineer", "Sales Representative", "Account Manager",
                        "Financial Analyst", "Accountant", "Recruiter", "Support Agent", "Product Designer",
                        "Marketing Specialist", "Operations Manager", "Team Lead"),
                       ("Data Scientist", "Legal Counsel")),
    "project_status": Vocab(("planned", "active", "completed"), ("on_hold",)),
    "role": Vocab(("lead", "developer", "reviewer", "analyst"), ("tester",)),
    "author_country": Vocab(("England", "United States", "France", "Germany", "Japan", "Nigeria", "Brazil",
                             "India", "Canada", "Russia", "Mexico"), ("Chile", "Sweden")),
    "genre": Vocab(("Fantasy", "Science Fiction", "Mystery", "Romance", "History", "Biography", "Thriller",
                    "Children"), ("Poetry", "Horror")),
    "member_city": Vocab(("Springfield", "Riverside", "Fairview", "Greenville", "Madison", "Clinton",
                          "Georgetown", "Salem"), ("Ashland", "Oxford")),
    "membership": Vocab(("basic", "premium", "student")),
    "airport_city": Vocab(("Frankfurt", "Paris", "London", "Madrid", "Rome", "Amsterdam", "Zurich", "Vienna",
                           "Istanbul", "Dubai", "New York", "Chicago", "Atlanta", "Los Angeles", "Toronto",
                           "Tokyo", "Singapore", "Sydney", "Sao Paulo", "Johannesburg"),
                          ("Helsinki", "Lima", "Nairobi")),
    "airport_country": Vocab(("Germany", "France", "United Kingdom", "Spain", "Italy", "Netherlands",
                              "Switzerland", "Austria", "Turkey", "United Arab Emirates", "United States",
                              "Canada", "Japan", "Singapore", "Brazil", "South Africa"),
                             ("Finland", "Peru", "Kenya", "Australia")),
    "airline_country": Vocab(("Germany", "France", "United Kingdom", "United States", "Netherlands",
                              "Turkey", "United Arab Emirates", "Japan", "Singapore"), ("Australia",)),
    "flight_status": Vocab(("scheduled", "departed", "landed", "delayed", "cancelled"), ("diverted",)),
    "seat_class": Vocab(("economy", "premium economy", "business"), ("first class",)),
}

AIRPORTS: tuple[tuple[str, str, str, str], ...] = (
    ("FRA", "Frankfurt Airport", "Frankfurt", "Germany"), ("CDG", "Charles de Gaulle Airport", "Paris", "France"),
    ("LHR", "Heathrow Airport", "London", "United Kingdom"), ("MAD", "Barajas Airport", "Madrid", "Spain"),
    ("FCO", "Fiumicino Airport", "Rome", "Italy"), ("AMS", "Schiphol Airport", "Amsterdam", "Netherlands"),
    ("ZRH", "Zurich Airport", "Zurich", "Switzerland"), ("VIE", "Vienna International Airport", "Vienna",
                                                           "Austria"),
    ("IST", "Istanbul Airport", "Istanbul", "Turkey"), ("DXB", "Dubai International Airport", "Dubai",
                                                        "United Arab Emirates"),
    ("JFK", "John F. Kennedy International Airport", "New York", "United States"),
    ("ORD", "O Hare International Airport", "Chicago", "United States"),
    ("ATL", "Hartsfield-Jackson Airport", "Atlanta", "United States"),
    ("LAX", "Los Angeles International Airport", "Los Angeles", "United States"),
    ("YYZ", "Pearson International Airport", "Toronto", "Canada"), ("HND", "Haneda Airport", "Tokyo", "Japan"),
    ("SIN", "Changi Airport", "Singapore", "Singapore"), ("SYD", "Kingsford Smith Airport", "Sydney", "Australia"),
    ("GRU", "Guarulhos International Airport", "Sao Paulo", "Brazil"),
    ("JNB", "O R Tambo International Airport", "Johannesburg", "South Africa"),
    ("HEL", "Helsinki-Vantaa Airport", "Helsinki", "Finland"), ("LIM", "Jorge Chavez Airport", "Lima", "Peru"),
    ("NBO", "Jomo Kenyatta Airport", "Nairobi", "Kenya"),
    ("LUG", "Lugano Airport", "Lugano", "Switzerland"), ("BRN", "Bern Airport", "Bern", "Switzerland"),
)
#: Airports no flight uses, an airline without flights, a department without staff or projects:
#: rows for the "which X have no Y" questions (never named by a question's values).
UNUSED_AIRPORTS = ("LUG", "BRN")
AIRLINES: tuple[tuple[str, str, str], ...] = (
    ("LH", "Lufthansa", "Germany"), ("AF", "Air France", "France"), ("BA", "British Airways", "United Kingdom"),
    ("UA", "United Airlines", "United States"), ("DL", "Delta Air Lines", "United States"),
    ("KL", "KLM", "Netherlands"), ("TK", "Turkish Airlines", "Turkey"), ("EK", "Emirates", "United Arab Emirates"),
    ("NH", "All Nippon Airways", "Japan"), ("SQ", "Singapore Airlines", "Singapore"),
    ("QF", "Qantas", "Australia"), ("AA", "American Airlines", "United States"), ("LX", "Swiss", "Switzerland"),
)
UNUSED_AIRLINE = "LX"
UNUSED_DEPARTMENT = "Facilities"
SHOP_PLACES: tuple[tuple[str, str], ...] = (
    ("Paris", "France"), ("Lyon", "France"), ("Berlin", "Germany"), ("Munich", "Germany"), ("Madrid", "Spain"),
    ("Barcelona", "Spain"), ("Rome", "Italy"), ("Milan", "Italy"), ("London", "United Kingdom"),
    ("Manchester", "United Kingdom"), ("New York", "United States"), ("Chicago", "United States"),
    ("Toronto", "Canada"), ("Vancouver", "Canada"), ("Lisbon", "Portugal"), ("Porto", "Portugal"),
    ("Amsterdam", "Netherlands"), ("Dublin", "Ireland"), ("Warsaw", "Poland"),
)
PRODUCT_NOUNS: dict[str, tuple[str, ...]] = {
    "Electronics": ("Headphones", "Charger", "Keyboard", "Monitor", "Speaker", "Webcam", "Mouse", "Tablet"),
    "Books": ("Cookbook", "Atlas", "Novel", "Dictionary", "Guidebook", "Notebook Set"),
    "Clothing": ("Jacket", "Sweater", "Scarf", "Raincoat", "T-Shirt", "Hoodie", "Jeans"),
    "Home": ("Lamp", "Blanket", "Kettle", "Teapot", "Cushion", "Mirror"),
    "Toys": ("Puzzle", "Robot Kit", "Board Game", "Kite", "Building Blocks"),
    "Sports": ("Yoga Mat", "Tennis Racket", "Football", "Water Bottle", "Dumbbells", "Helmet"),
    "Beauty": ("Face Cream", "Shampoo", "Perfume", "Lip Balm", "Hair Dryer"),
    "Grocery": ("Coffee Beans", "Olive Oil", "Green Tea", "Honey", "Dark Chocolate"),
    "Garden": ("Watering Can", "Seed Kit", "Sprinkler", "Planter"),
    "Office": ("Desk Chair", "Stapler", "Whiteboard", "Desk Organizer"),
}
PRICE_RANGE: dict[str, tuple[int, int]] = {
    "Electronics": (20, 900), "Books": (8, 60), "Clothing": (15, 200), "Home": (10, 250), "Toys": (8, 120),
    "Sports": (10, 300), "Beauty": (5, 150), "Grocery": (3, 40), "Garden": (8, 120), "Office": (5, 400),
}
ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Pro", "Smart", "Travel", "Urban", "Vintage", "Premium")
TITLE_ADJ = ("Silent", "Hidden", "Last", "Golden", "Broken", "Lost", "Distant", "Crimson", "Endless", "Secret",
             "Winter", "Burning", "Quiet", "Forgotten", "Midnight")
TITLE_NOUN = ("River", "Empire", "Night", "Voyage", "Kingdom", "Letter", "Mountain", "Shadow", "City",
              "Island", "Promise", "Storm", "Harbor", "Orchard", "Forest", "Machine", "Witness", "Summer")
PROJECT_NAMES = ("Apollo", "Borealis", "Cascade", "Delta", "Echo", "Falcon", "Granite", "Horizon", "Ion",
                 "Juniper", "Keystone", "Lumen", "Meridian", "Nimbus", "Orion", "Pioneer", "Quartz", "Redwood",
                 "Summit", "Tundra", "Unity", "Vertex", "Willow", "Zenith", "Atlas", "Beacon", "Comet", "Dynamo",
                 "Ember", "Frontier", "Galaxy", "Harbor", "Iris", "Jade", "Kepler", "Lynx")

Row = dict[str, Any]


@dataclass
class Data:
    """Fixture rows of one schema: ``table → (columns, rows)``."""

    tables: dict[str, tuple[tuple[str, ...], list[Row]]] = field(default_factory=dict)

    def add(self, table: str, columns: tuple[str, ...], rows: list[Row]) -> None:
        self.tables[table] = (columns, rows)

    def rows(self, table: str) -> list[Row]:
        return self.tables[table][1]


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    pairs = [(f, last) for f in FIRST for last in LAST]
    return rng.sample(pairs, n)


def _all_values(key: str) -> tuple[str, ...]:
    return (*V[key].train, *V[key].held_out)


def _spread(rng: random.Random, key: str, n: int) -> list[str]:
    """``n`` values of a vocabulary, each at least once (when ``n`` allows), in random order."""
    values = list(_all_values(key))
    if n < len(values):
        return rng.sample(values, n)
    out = values + [rng.choice(values) for _ in range(n - len(values))]
    rng.shuffle(out)
    return out


def _shop() -> Data:
    rng = random.Random("sql-data:shop")
    data = Data()
    customers: list[Row] = []
    for i, (first, last) in enumerate(_names(rng, 120), start=1):
        city, country = SHOP_PLACES[(i - 1) % len(SHOP_PLACES)] if i <= len(SHOP_PLACES) else rng.choice(SHOP_PLACES)
        customers.append({"id": i, "name": f"{first} {last}", "email": f"{first.lower()}.{last.lower()}@example.com",
                          "city": city, "country": country,
                          "signup_date": _day(rng, date(2021, 1, 1), date(2024, 6, 30))})
    data.add("customers", ("id", "name", "email", "city", "country", "signup_date"), customers)
    products: list[Row] = []
    names: set[str] = set()
    cats = _spread(rng, "category", 90)
    for cat in cats:
        while True:
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(PRODUCT_NOUNS[cat])}"
            if name not in names:
                break
        names.add(name)
        lo, hi = PRICE_RANGE[cat]
        products.append({"id": len(products) + 1, "name": name, "category": cat,
                         "price": round(rng.uniform(lo, hi), 2), "stock": rng.randint(0, 500)})
    data.add("products", ("id", "name", "category", "price", "stock"), products)
    buyers = [c["id"] for c in customers if c["id"] % 7 != 0]  # every 7th customer never orders
    sold = [p for p in products if p["id"] % 9 != 0]  # every 9th product is never sold
    orders: list[Row] = []
    items: list[Row] = []
    statuses = _spread(rng, "order_status", 300)
    for oid in range(1, 301):
        chosen = rng.sample(sold, rng.randint(1, 4))
        total = 0.0
        for prod in chosen:
            qty = rng.randint(1, 5)
            items.append({"order_id": oid, "product_id": prod["id"], "quantity": qty, "unit_price": prod["price"]})
            total += qty * prod["price"]
        orders.append({"id": oid, "customer_id": buyers[(oid - 1) % len(buyers)] if oid <= len(buyers)
                       else rng.choice(buyers), "order_date": _day(rng, date(2023, 1, 1), date(2024, 12, 31)),
                       "status": statuses[oid - 1], "total": round(total, 2)})
    data.add("orders", ("id", "customer_id", "order_date", "status", "total"), orders)
    data.add("order_items", ("order_id", "product_id", "quantity", "unit_price"), items)
    return data


def _hr() -> Data:
    rng = random.Random("sql-data:hr")
    data = Data()
    dept_names = (*_all_values("department"), UNUSED_DEPARTMENT)
    locations = _spread(rng, "location", len(dept_names))
    departments: list[Row] = [
        {"id": i, "name": n, "location": locations[i - 1], "budget": float(rng.randrange(200_000, 3_000_000, 50_000))}
        for i, n in enumerate(dept_names, start=1)
    ]
    staffed = [d for d in departments if d["name"] != UNUSED_DEPARTMENT]
    data.add("departments", ("id", "name", "location", "budget"), departments)
    titles = _all_values("job_title")
    employees: list[Row] = []
    heads: dict[int, int] = {}
    for i, (first, last) in enumerate(_names(rng, 200), start=1):
        dept = staffed[(i - 1) % len(staffed)]["id"] if i <= len(staffed) else rng.choice(staffed)["id"]
        manager = heads.get(dept)
        if manager is None:
            heads[dept] = i
        title = titles[(i - 1) % len(titles)] if i <= len(titles) else rng.choice(titles)
        employees.append({"id": i, "first_name": first, "last_name": last, "department_id": dept,
                          "manager_id": manager, "job_title": title,
                          "salary": float(rng.randrange(38_000, 185_000, 500)),
                          "hire_date": _day(rng, date(2012, 1, 1), date(2024, 12, 31))})
    data.add("employees", ("id", "first_name", "last_name", "department_id", "manager_id", "job_title", "salary",
                           "hire_date"), employees)
    projects: list[Row] = []
    statuses = _spread(rng, "project_status", len(PROJECT_NAMES))
    for i, name in enumerate(PROJECT_NAMES, start=1):
        start = _day(rng, date(2019, 1, 1), date(2024, 10, 1))
        status = statuses[i - 1]
        end = start + timedelta(days=rng.randint(60, 700)) if status == "completed" else None
        projects.append({"id": i, "name": f"Project {name}", "department_id": rng.choice(staffed)["id"],
                         "status": status, "start_date": start, "end_date": end,
                         "budget": float(rng.randrange(20_000, 900_000, 5_000))})
    data.add("projects", ("id", "name", "department_id", "status", "start_date", "end_date", "budget"), projects)
    assignments: list[Row] = []
    seen: set[tuple[int, int]] = set()
    roles = _spread(rng, "role", 420)
    workers = [e["id"] for e in employees if e["id"] % 6 != 0]  # every 6th employee has no project
    while len(assignments) < 420:
        key = (rng.choice(workers), rng.randint(1, len(projects)))
        if key in seen:
            continue
        seen.add(key)
        assignments.append({"employee_id": key[0], "project_id": key[1], "role": roles[len(assignments)],
                            "hours": rng.randint(5, 400)})
    assignments.sort(key=lambda r: (r["employee_id"], r["project_id"]))
    data.add("assignments", ("employee_id", "project_id", "role", "hours"), assignments)
    return data


def _library() -> Data:
    rng = random.Random("sql-data:library")
    data = Data()
    countries = _spread(rng, "author_country", 60)
    authors: list[Row] = [
        {"id": i, "name": f"{f} {last}", "country": countries[i - 1], "birth_year": rng.randint(1900, 1995)}
        for i, (f, last) in enumerate(_names(rng, 60), start=1)
    ]
    data.add("authors", ("id", "name", "country", "birth_year"), authors)
    writers = [a["id"] for a in authors if a["id"] % 10 != 0]  # every 10th author has no book here
    titles = rng.sample([f"The {a} {n}" for a in TITLE_ADJ for n in TITLE_NOUN], 250)
    genres = _spread(rng, "genre", 250)
    books: list[Row] = [
        {"id": i, "title": t,
         "author_id": writers[(i - 1) % len(writers)] if i <= len(writers) else rng.choice(writers),
         "genre": genres[i - 1], "published_year": rng.randint(1950, 2024), "pages": rng.randint(80, 900)}
        for i, t in enumerate(titles, start=1)
    ]
    data.add("books", ("id", "title", "author_id", "genre", "published_year", "pages"), books)
    cities = _spread(rng, "member_city", 150)
    kinds = _spread(rng, "membership", 150)
    members: list[Row] = [
        {"id": i, "name": f"{f} {last}", "city": cities[i - 1], "membership": kinds[i - 1],
         "joined_on": _day(rng, date(2018, 1, 1), date(2024, 6, 30))}
        for i, (f, last) in enumerate(_names(rng, 150), start=1)
    ]
    data.add("members", ("id", "name", "city", "membership", "joined_on"), members)
    readers = [m["id"] for m in members if m["id"] % 8 != 0]
    lent = [b["id"] for b in books if b["id"] % 11 != 0]
    loans: list[Row] = []
    for i in range(1, 501):
        start = _day(rng, date(2023, 1, 1), date(2024, 12, 15))
        back = None if rng.random() < 0.15 else start + timedelta(days=rng.randint(1, 40))
        loans.append({"id": i, "book_id": rng.choice(lent), "member_id": readers[(i - 1) % len(readers)]
                      if i <= len(readers) else rng.choice(readers), "loan_date": start,
                      "due_date": start + timedelta(days=21), "returned_on": back})
    data.add("loans", ("id", "book_id", "member_id", "loan_date", "due_date", "returned_on"), loans)
    return data


def _flights() -> Data:
    rng = random.Random("sql-data:flights")
    data = Data()
    data.add("airports", ("code", "name", "city", "country"),
             [{"code": c, "name": n, "city": city, "country": country} for c, n, city, country in AIRPORTS])
    data.add("airlines", ("code", "name", "country"),
             [{"code": c, "name": n, "country": country} for c, n, country in AIRLINES])
    codes = [a[0] for a in AIRPORTS if a[0] not in UNUSED_AIRPORTS]
    carriers = [a for a in AIRLINES if a[0] != UNUSED_AIRLINE]
    statuses = _spread(rng, "flight_status", 300)
    flights: list[Row] = []
    for i in range(1, 301):
        airline = carriers[(i - 1) % len(carriers)][0] if i <= len(carriers) else rng.choice(carriers)[0]
        origin = codes[(i - 1) % len(codes)] if i <= len(codes) else rng.choice(codes)
        dest = codes[(i + 6) % len(codes)] if i <= len(codes) else rng.choice([c for c in codes if c != origin])
        dist = rng.randint(300, 14000)
        depart = datetime(2024, 1, 1) + timedelta(minutes=15 * rng.randrange(366 * 96))
        flights.append({"id": i, "flight_number": f"{airline}{rng.randint(100, 9999)}", "airline_code": airline,
                        "origin": origin, "destination": dest, "departure_time": depart,
                        "duration_min": 40 + dist // 12 + rng.randint(0, 40), "distance_km": dist,
                        "status": statuses[i - 1]})
    data.add("flights", ("id", "flight_number", "airline_code", "origin", "destination", "departure_time",
                         "duration_min", "distance_km", "status"), flights)
    classes = _spread(rng, "seat_class", 600)
    factor = {"economy": 1.0, "premium economy": 1.6, "business": 3.2, "first class": 5.5}
    booked = [f for f in flights if f["id"] % 13 != 0]
    bookings: list[Row] = []
    for i in range(1, 601):
        flight = rng.choice(booked)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        seat = classes[i - 1]
        price = round((60 + flight["distance_km"] * 0.08) * factor[seat] * rng.uniform(0.8, 1.3), 2)
        when = flight["departure_time"].date() - timedelta(days=rng.randint(1, 120))
        bookings.append({"id": i, "flight_id": flight["id"], "passenger_name": f"{first} {last}", "seat_class": seat,
                         "price": price, "booked_on": when})
    data.add("bookings", ("id", "flight_id", "passenger_name", "seat_class", "price", "booked_on"), bookings)
    return data


@cache
def schema_data(name: str) -> Data:
    """The fixture rows of schema ``name`` (deterministic)."""
    return {"shop": _shop, "hr": _hr, "library": _library, "flights": _flights}[name]()


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return f"'{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, date):
        return f"'{value:%Y-%m-%d}'"
    return "'" + str(value).replace("'", "''") + "'"


def data_sql(name: str) -> str:
    """``INSERT`` statements of schema ``name``'s fixture rows, parents before children."""
    parts = [f"-- Fixture rows of the {name} schema (generated by the sql expert's generator.py; do not edit)."]
    for table, (columns, rows) in schema_data(name).tables.items():
        values = ",\n".join("  (" + ", ".join(_sql_literal(r[c]) for c in columns) + ")" for r in rows)
        parts.append(f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{values};")
    return "\n\n".join(parts) + "\n"


def schema_files() -> dict[str, str]:
    """File name → content of every schema file the expert ships."""
    files: dict[str, str] = {}
    for name in SCHEMA_NAMES:
        files[f"{name}.sql"] = DDL[name] + "\n"
        files[f"{name}.data.sql"] = data_sql(name)
    return files


def schemas_dir(expert: Expert) -> Path:
    rel = expert.manifest.output.resources.get("schemas", "schemas")
    return expert.root / rel


def write_schema_files(expert: Expert) -> None:
    """(Re)write the schema files into the expert's ``schemas`` folder, only where they differ."""
    folder = schemas_dir(expert)
    for name, text in schema_files().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)


def write_resources(expert: Expert) -> None:
    """The resources this generator produces besides the data: the schema files."""
    write_schema_files(expert)


# ---------------------------------------------------------------------- the catalog questions draw on
@dataclass(frozen=True)
class Col:
    name: str
    words: tuple[str, ...]
    vocab: str | None = None  # categorical columns that questions filter on
    step: int = 1  # numeric columns: thresholds are multiples of this


@dataclass(frozen=True)
class Table:
    name: str
    alias: str
    one: str
    many: str
    label: tuple[str, ...]
    label_words: tuple[str, ...]
    cats: tuple[Col, ...] = ()  # filterable categorical columns
    groups: tuple[Col, ...] = ()  # further GROUP BY / PARTITION BY columns (foreign keys)
    nums: tuple[Col, ...] = ()
    date: Col | None = None
    pk: str = "id"
    nulls: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # column, null words, not-null words
    like: str | None = None  # text column for LIKE questions
    like_words: tuple[str, ...] = ()

    @property
    def filters(self) -> tuple[Col, ...]:
        """Categorical columns single-table questions use (the label itself left out)."""
        return tuple(c for c in self.cats if c.name not in self.label)


@dataclass(frozen=True)
class Rel:
    """``child.fk`` references ``parent.pk``."""

    child: str
    parent: str
    fk: str
    verb: tuple[str, ...]  # child → parent: "orders placed by customers"
    has: tuple[str, ...]  # parent has children: "customers who have placed orders"
    none: tuple[str, ...]  # parent without children


@dataclass(frozen=True)
class Bridge:
    """``a`` ↔ ``c`` through ``b`` (``b.a_fk`` → ``a``, ``b.c_fk`` → ``c``)."""

    a: str
    b: str
    c: str
    a_fk: str
    c_fk: str
    link: tuple[str, ...]  # "customers who ordered products"
    b_num: Col | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    tables: dict[str, Table]
    rels: tuple[Rel, ...]
    bridges: tuple[Bridge, ...]

    def t(self, name: str) -> Table:
        return self.tables[name]


def _tables(*tables: Table) -> dict[str, Table]:
    return {t.name: t for t in tables}


SCHEMAS: dict[str, Schema] = {
    "shop": Schema("shop", _tables(
        Table("customers", "c", "customer", "customers", ("name",), ("names",),
              cats=(Col("city", ("city",), "shop_city"), Col("country", ("country",), "shop_country")),
              date=Col("signup_date", ("signup date", "sign-up date")), like="name",
              like_words=("name",)),
        Table("products", "p", "product", "products", ("name",), ("names",),
              cats=(Col("category", ("category", "product category"), "category"),),
              nums=(Col("price", ("price", "unit price"), step=5), Col("stock", ("stock", "units in stock"),
                                                                          step=10)),
              like="name", like_words=("name", "product name")),
        Table("orders", "o", "order", "orders", ("id",), ("ids", "order ids"),
              cats=(Col("status", ("status", "order status"), "order_status"),),
              groups=(Col("customer_id", ("customer",)),),
              nums=(Col("total", ("total", "order total", "total amount"), step=10),),
              date=Col("order_date", ("order date",))),
        Table("order_items", "oi", "order item", "order items", ("order_id", "product_id"),
              ("order and product ids",), groups=(Col("product_id", ("product",)), Col("order_id", ("order",))),
              nums=(Col("quantity", ("quantity",)), Col("unit_price", ("unit price",), step=5))),
    ), (
        Rel("orders", "customers", "customer_id", ("placed by", "made by"), ("have placed orders", "ordered"),
            ("never placed an order", "have no orders")),
        Rel("order_items", "products", "product_id", ("for", "of"), ("have been ordered", "were sold"),
            ("were never ordered", "have never been sold")),
    ), (
        Bridge("orders", "order_items", "products", "order_id", "product_id", ("contain", "include"),
               Col("quantity", ("quantity", "units"))),
        Bridge("products", "order_items", "orders", "product_id", "order_id", ("appear in", "are part of"),
               Col("quantity", ("quantity", "units"))),
    )),
    "hr": Schema("hr", _tables(
        Table("departments", "d", "department", "departments", ("name",), ("names",),
              cats=(Col("location", ("location", "office location"), "location"),
                    Col("name", ("name", "department name"), "department")),
              nums=(Col("budget", ("budget",), step=50000),)),
        Table("employees", "e", "employee", "employees", ("first_name", "last_name"), ("names", "full names"),
              cats=(Col("job_title", ("job title", "title", "position"), "job_title"),),
              groups=(Col("department_id", ("department",)),),
              nums=(Col("salary", ("salary", "pay"), step=1000),),
              date=Col("hire_date", ("hire date", "hiring date")),
              nulls=(("manager_id", ("have no manager", "report to nobody"), ("have a manager", "report to someone")),),
              like="last_name", like_words=("last name", "surname")),
        Table("projects", "p", "project", "projects", ("name",), ("names",),
              cats=(Col("status", ("status", "project status"), "project_status"),),
              groups=(Col("department_id", ("department",)),),
              nums=(Col("budget", ("budget", "project budget"), step=10000),),
              date=Col("start_date", ("start date",)),
              nulls=(("end_date", ("have no end date", "are still open"), ("have an end date", "have ended")),),
              like="name", like_words=("name",)),
        Table("assignments", "a", "assignment", "assignments", ("employee_id", "project_id"),
              ("employee and project ids",), cats=(Col("role", ("role",), "role"),),
              groups=(Col("project_id", ("project",)), Col("employee_id", ("employee",))),
              nums=(Col("hours", ("hours", "hours worked"), step=10),)),
    ), (
        Rel("employees", "departments", "department_id", ("working in", "in"), ("have employees", "employ staff"),
            ("have no employees", "employ nobody")),
        Rel("projects", "departments", "department_id", ("run by", "owned by"), ("run projects", "own projects"),
            ("run no projects", "have no projects")),
        Rel("assignments", "employees", "employee_id", ("of", "held by"), ("are assigned to projects",
                                                                          "have assignments"),
            ("are not assigned to any project", "have no assignments")),
    ), (
        Bridge("employees", "assignments", "projects", "employee_id", "project_id", ("worked on", "are assigned to"),
               Col("hours", ("hours", "hours worked"))),
        Bridge("projects", "assignments", "employees", "project_id", "employee_id", ("involve", "are staffed by"),
               Col("hours", ("hours", "hours worked"))),
    )),
    "library": Schema("library", _tables(
        Table("authors", "a", "author", "authors", ("name",), ("names",),
              cats=(Col("country", ("country", "home country"), "author_country"),),
              nums=(Col("birth_year", ("birth year", "year of birth"), step=5),), like="name",
              like_words=("name",)),
        Table("books", "b", "book", "books", ("title",), ("titles",),
              cats=(Col("genre", ("genre",), "genre"),), groups=(Col("author_id", ("author",)),),
              nums=(Col("pages", ("pages", "page count"), step=25), Col("published_year", ("publication year",
                                                                                          "year published"),
                                                                        step=5)),
              like="title", like_words=("title",)),
        Table("members", "m", "member", "members", ("name",), ("names",),
              cats=(Col("city", ("city",), "member_city"), Col("membership", ("membership", "membership type"),
                                                               "membership")),
              date=Col("joined_on", ("join date", "joining date")), like="name", like_words=("name",)),
        Table("loans", "l", "loan", "loans", ("id",), ("ids", "loan ids"), groups=(Col("book_id", ("book",)),
                                                                             Col("member_id", ("member",))),
              date=Col("loan_date", ("loan date", "borrowing date")),
              nulls=(("returned_on", ("have not been returned", "are still out"),
                      ("have been returned", "came back")),)),
    ), (
        Rel("books", "authors", "author_id", ("written by", "by"), ("have books", "wrote books"),
            ("have no books", "wrote no books in the catalog")),
        Rel("loans", "members", "member_id", ("made by", "taken out by"), ("borrowed something", "have loans"),
            ("never borrowed anything", "have no loans")),
        Rel("loans", "books", "book_id", ("of", "for"), ("have been borrowed", "were lent out"),
            ("were never borrowed", "have never been lent")),
    ), (
        Bridge("members", "loans", "books", "member_id", "book_id", ("borrowed", "have borrowed")),
        Bridge("books", "loans", "members", "book_id", "member_id", ("were borrowed by", "were lent to")),
    )),
    "flights": Schema("flights", _tables(
        Table("airports", "ap", "airport", "airports", ("name",), ("names",), pk="code",
              cats=(Col("city", ("city",), "airport_city"), Col("country", ("country",), "airport_country")),
              like="name", like_words=("name",)),
        Table("airlines", "al", "airline", "airlines", ("name",), ("names",), pk="code",
              cats=(Col("country", ("country", "home country"), "airline_country"),), like="name",
              like_words=("name",)),
        Table("flights", "f", "flight", "flights", ("flight_number",), ("flight numbers",),
              cats=(Col("status", ("status", "flight status"), "flight_status"),),
              groups=(Col("airline_code", ("airline",)), Col("origin", ("origin airport",)),
                      Col("destination", ("destination airport",))),
              nums=(Col("distance_km", ("distance", "distance in km"), step=100),
                    Col("duration_min", ("duration", "duration in minutes"), step=10)),
              date=Col("departure_time", ("departure time", "departure date"))),
        Table("bookings", "bk", "booking", "bookings", ("passenger_name",), ("passenger names",),
              cats=(Col("seat_class", ("seat class", "cabin class"), "seat_class"),),
              groups=(Col("flight_id", ("flight",)),),
              nums=(Col("price", ("price", "fare"), step=10),), date=Col("booked_on", ("booking date",)),
              like="passenger_name", like_words=("passenger name",)),
    ), (
        Rel("flights", "airlines", "airline_code", ("operated by", "flown by"), ("operate flights", "fly"),
            ("operate no flights", "have no flights")),
        Rel("flights", "airports", "destination", ("arriving at", "landing at"), ("receive flights",
                                                                                  "are flight destinations"),
            ("receive no flights", "are never a flight destination")),
        Rel("bookings", "flights", "flight_id", ("on", "for"), ("have bookings", "were booked"),
            ("have no bookings", "were never booked")),
    ), (
        Bridge("airlines", "flights", "airports", "airline_code", "destination", ("fly to", "operate flights to"),
               Col("distance_km", ("distance", "kilometers"))),
        Bridge("airports", "flights", "airlines", "destination", "airline_code", ("are served by",
                                                                                  "receive flights from"),
               Col("distance_km", ("distance", "kilometers"))),
    )),
}

CMP: dict[str, tuple[str, ...]] = {
    ">": ("more than", "over", "above", "greater than"),
    ">=": ("at least", "no less than"),
    "<": ("less than", "under", "below"),
    "<=": ("at most", "no more than"),
}
CMP_HELD_OUT: dict[str, tuple[str, ...]] = {">": ("exceeding",), "<": ("lower than",)}
STATS: dict[str, tuple[str, ...]] = {
    "AVG": ("average", "mean"),
    "SUM": ("total", "sum of"),
    "MIN": ("minimum", "lowest", "smallest"),
    "MAX": ("maximum", "highest", "largest"),
}
STATS_HELD_OUT: dict[str, tuple[str, ...]] = {"AVG": ("typical",), "MAX": ("peak",)}


# ---------------------------------------------------------------------- drawing helpers
def cmp_word(p: Picker) -> tuple[str, str]:
    op = p.choice(tuple(CMP))
    words = CMP_HELD_OUT.get(op, ()) if p.split == "eval" else ()
    return op, p.choice(words or CMP[op])


def stat_word(p: Picker) -> tuple[str, str]:
    op = p.choice(tuple(STATS))
    words = STATS_HELD_OUT.get(op, ()) if p.split == "eval" else ()
    return op, p.choice(words or STATS[op])


def _num(value: Any) -> float:
    if isinstance(value, datetime | date):
        raise TypeError("not a number")
    return float(value)


def threshold(p: Picker, values: list[Any], op: str, step: int) -> int:
    """A round threshold that keeps some of ``values`` on the ``op`` side."""
    nums = sorted(_num(v) for v in values)
    if not nums:
        return step
    if op in (">", ">="):
        t = int(nums[int(p.rng.uniform(0.05, 0.8) * (len(nums) - 1))] // step * step)
        while t >= nums[-1] and t > 0:
            t -= step
    else:
        t = int(-(-nums[int(p.rng.uniform(0.2, 0.95) * (len(nums) - 1))] // step) * step)
        while t <= nums[0]:
            t += step
    return t


def pick_date(p: Picker, values: list[Any], lo_q: float = 0.1, hi_q: float = 0.9) -> date:
    days = sorted(v.date() if isinstance(v, datetime) else v for v in values if v is not None)
    d: date = days[int(p.rng.uniform(lo_q, hi_q) * (len(days) - 1))]
    return d.replace(day=1) if p.rng.random() < 0.5 else d


def lit(value: Any) -> str:
    return _sql_literal(value)


def label_sql(t: Table, alias: str | None = None, *more: str) -> str:
    """The select list: the table's label columns, then ``more`` (each column once)."""
    pre = f"{alias}." if alias else ""
    return ", ".join(dict.fromkeys([*(pre + c for c in t.label), *more]))


def cat_of(p: Picker, t: Table, *, single: bool = False) -> tuple[Col, str]:
    col = p.choice(t.filters if single else t.cats)
    assert col.vocab is not None
    return col, p.value(V[col.vocab])


def rows_where(schema: str, table: str, col: str, value: Any) -> list[Row]:
    return [r for r in schema_data(schema).rows(table) if r[col] == value]


def col_values(schema: str, table: str, col: str, rows: list[Row] | None = None) -> list[Any]:
    return [r[col] for r in (rows if rows is not None else schema_data(schema).rows(table)) if r[col] is not None]


def slots_for(p: Picker, t: Table) -> dict[str, Any]:
    return {"many": t.many, "one": t.one, "labels": p.choice(t.label_words), "table": t.name}


Built = tuple[dict[str, Any], str] | None
Build = Callable[[Picker, Schema], Built]


@dataclass(frozen=True)
class Intent:
    name: str
    templates: Templates
    build: Build


class NotApplicable(Exception):
    """The drawn intent has nothing to work on in the drawn schema."""


def _pick(p: Picker, tables: list[Table]) -> Table:
    if not tables:
        raise NotApplicable
    t: Table = p.choice(tables)
    return t


def _tables_with(s: Schema, pred: Callable[[Table], bool]) -> list[Table]:
    return [t for t in s.tables.values() if pred(t)]


# ---------------------------------------------------------------------- intents
def _select_eq(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters)))
    col, v = cat_of(p, t, single=True)
    return ({**slots_for(p, t), "col": p.choice(col.words), "v": v},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {col.name} = {lit(v)}")


def _select_in(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: any(len(V[c.vocab].train) >= 3 for c in t.filters if c.vocab)))
    col = p.choice([c for c in t.filters if c.vocab and len(V[c.vocab].train) >= 3])
    assert col.vocab is not None
    vals = p.values(V[col.vocab], 2)
    return ({**slots_for(p, t), "col": p.choice(col.words), "v1": vals[0], "v2": vals[1]},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {col.name} IN ({lit(vals[0])}, {lit(vals[1])})")


def _count_eq(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters)))
    col, v = cat_of(p, t, single=True)
    return ({**slots_for(p, t), "col": p.choice(col.words), "v": v},
            f"SELECT COUNT(*) FROM {t.name} WHERE {col.name} = {lit(v)}")


def _select_num(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    op, word = cmp_word(p)
    n = threshold(p, col_values(s.name, t.name, col.name), op, col.step)
    return ({**slots_for(p, t), "col": p.choice(col.words), "cmp": word, "n": n},
            f"SELECT {label_sql(t, None, col.name)} FROM {t.name} WHERE {col.name} {op} {n}")


def _between(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    values = col_values(s.name, t.name, col.name)
    lo = threshold(p, values, ">=", col.step)
    hi = threshold(p, [v for v in values if _num(v) >= lo] or values, "<=", col.step)
    if hi <= lo:
        hi = lo + col.step * p.rng.randint(1, 10)
    return ({**slots_for(p, t), "col": p.choice(col.words), "lo": lo, "hi": hi},
            f"SELECT {label_sql(t, None, col.name)} FROM {t.name} WHERE {col.name} BETWEEN {lo} AND {hi}")


def _eq_and_num(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters and t.nums)))
    col, v = cat_of(p, t, single=True)
    num = p.choice(t.nums)
    op, word = cmp_word(p)
    n = threshold(p, col_values(s.name, t.name, num.name, rows_where(s.name, t.name, col.name, v)), op, num.step)
    return ({**slots_for(p, t), "col": p.choice(col.words), "v": v, "num": p.choice(num.words), "cmp": word, "n": n},
            f"SELECT {label_sql(t, None, num.name)} FROM {t.name} WHERE {col.name} = {lit(v)} AND {num.name} {op} {n}")


def _like_prefix(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.like is not None))
    assert t.like is not None
    value: str = p.choice(col_values(s.name, t.name, t.like))
    head = value.split()[0] + " " if value.split()[0] in ("The", "Project") else ""
    prefix = value[: len(head) + p.rng.randint(1, 3)]
    return ({**slots_for(p, t), "col": p.choice(t.like_words), "v": prefix},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {t.like} LIKE {lit(prefix + '%')}")


def _like_contains(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.like is not None))
    assert t.like is not None
    words = p.choice(col_values(s.name, t.name, t.like)).split()
    word = p.choice([w for w in words if len(w) > 3] or words)
    return ({**slots_for(p, t), "col": p.choice(t.like_words), "v": word},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {t.like} LIKE {lit('%' + word + '%')}")


def _is_null(p: Picker, s: Schema) -> Built:
    ts = _tables_with(s, lambda t: bool(t.nulls))
    if not ts:
        return None
    t = p.choice(ts)
    col, null_words, _ = p.choice(t.nulls)
    return ({**slots_for(p, t), "state": p.choice(null_words)},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {col} IS NULL")


def _not_null(p: Picker, s: Schema) -> Built:
    ts = _tables_with(s, lambda t: bool(t.nulls))
    if not ts:
        return None
    t = p.choice(ts)
    col, _, words = p.choice(t.nulls)
    return ({**slots_for(p, t), "state": p.choice(words)},
            f"SELECT {label_sql(t)} FROM {t.name} WHERE {col} IS NOT NULL")


def _top(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    n = p.rng.randint(3, 15)
    return ({**slots_for(p, t), "col": p.choice(col.words), "n": n},
            f"SELECT {label_sql(t, None, col.name)} FROM {t.name} ORDER BY {col.name} DESC LIMIT {n}")


def _bottom(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    n = p.rng.randint(3, 15)
    return ({**slots_for(p, t), "col": p.choice(col.words), "n": n},
            f"SELECT {label_sql(t, None, col.name)} FROM {t.name} ORDER BY {col.name} ASC LIMIT {n}")


def _latest(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.date is not None))
    assert t.date is not None
    n = p.rng.randint(3, 15)
    return ({**slots_for(p, t), "date": p.choice(t.date.words), "n": n},
            f"SELECT {label_sql(t)}, {t.date.name} FROM {t.name} ORDER BY {t.date.name} DESC LIMIT {n}")


def _distinct(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters)))
    col = p.choice(t.filters)
    return ({**slots_for(p, t), "col": p.choice(col.words)}, f"SELECT DISTINCT {col.name} FROM {t.name}")


def _count_distinct(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters)))
    col = p.choice(t.filters)
    return ({**slots_for(p, t), "col": p.choice(col.words)}, f"SELECT COUNT(DISTINCT {col.name}) FROM {t.name}")


def _agg(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    op, word = stat_word(p)
    return ({**slots_for(p, t), "col": p.choice(col.words), "stat": word}, f"SELECT {op}({col.name}) FROM {t.name}")


def _agg_eq(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters and t.nums)))
    col, v = cat_of(p, t, single=True)
    num = p.choice(t.nums)
    op, word = stat_word(p)
    return ({**slots_for(p, t), "col": p.choice(col.words), "v": v, "num": p.choice(num.words), "stat": word},
            f"SELECT {op}({num.name}) FROM {t.name} WHERE {col.name} = {lit(v)}")


def _group_count(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters)))
    col = p.choice(t.filters)
    alias = f"num_{t.name}"
    return ({**slots_for(p, t), "col": p.choice(col.words)},
            f"SELECT {col.name}, COUNT(*) AS {alias} FROM {t.name} GROUP BY {col.name} ORDER BY {alias} DESC")


def _group_agg(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool((t.filters or t.groups) and t.nums)))
    col = p.choice((*t.filters, *t.groups))
    num = p.choice(t.nums)
    op, word = stat_word(p)
    alias = f"{op.lower()}_{num.name}"
    return ({**slots_for(p, t), "col": p.choice(col.words), "num": p.choice(num.words), "stat": word},
            f"SELECT {col.name}, {op}({num.name}) AS {alias} FROM {t.name} GROUP BY {col.name}")


def _having(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.filters or t.groups)))
    col = p.choice((*t.filters, *t.groups))
    counts: dict[Any, int] = {}
    for r in schema_data(s.name).rows(t.name):
        counts[r[col.name]] = counts.get(r[col.name], 0) + 1
    top = max(counts.values())
    if top < 2:
        raise NotApplicable
    n = p.rng.randint(1, top - 1)
    alias = f"num_{t.name}"
    return ({**slots_for(p, t), "col": p.choice(col.words), "n": n},
            f"SELECT {col.name}, COUNT(*) AS {alias} FROM {t.name} GROUP BY {col.name} HAVING COUNT(*) > {n}")


def _date_range(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.date is not None))
    assert t.date is not None
    values = col_values(s.name, t.name, t.date.name)
    a = pick_date(p, values, 0.05, 0.6)
    b = pick_date(p, values, 0.5, 0.98)
    if b <= a:
        b = a + timedelta(days=p.rng.randint(20, 200))
    return ({**slots_for(p, t), "date": p.choice(t.date.words), "start": a.isoformat(), "end": b.isoformat()},
            f"SELECT {label_sql(t)}, {t.date.name} FROM {t.name} "
            f"WHERE {t.date.name} >= DATE '{a.isoformat()}' AND {t.date.name} < DATE '{b.isoformat()}'")


def _date_after(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.date is not None))
    assert t.date is not None
    a = pick_date(p, col_values(s.name, t.name, t.date.name), 0.3, 0.95)
    return ({**slots_for(p, t), "date": p.choice(t.date.words), "start": a.isoformat()},
            f"SELECT {label_sql(t)}, {t.date.name} FROM {t.name} WHERE {t.date.name} >= DATE '{a.isoformat()}'")


def _year_count(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.date is not None))
    assert t.date is not None
    years = sorted({v.year for v in col_values(s.name, t.name, t.date.name)})
    year = p.choice(years)
    return ({**slots_for(p, t), "date": p.choice(t.date.words), "year": year},
            f"SELECT COUNT(*) FROM {t.name} WHERE EXTRACT(YEAR FROM {t.date.name}) = {year}")


def _per_month(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: t.date is not None))
    assert t.date is not None
    unit = p.choice(("month", "year"))
    alias = f"num_{t.name}"
    return ({**slots_for(p, t), "date": p.choice(t.date.words), "unit": unit},
            f"SELECT DATE_TRUNC('{unit}', {t.date.name}) AS {unit}, COUNT(*) AS {alias} FROM {t.name} "
            f"GROUP BY {unit} ORDER BY {unit}")


def _rel(p: Picker, s: Schema, pred: Callable[[Rel], bool] = lambda r: True) -> Rel | None:
    rels = [r for r in s.rels if pred(r)]
    return p.choice(rels) if rels else None


def _on(r: Rel, s: Schema) -> str:
    c, par = s.t(r.child), s.t(r.parent)
    return f"{c.alias}.{r.fk} = {par.alias}.{par.pk}"


def _with_children(s: Schema, r: Rel, col: str, v: Any) -> Any:
    """``v`` if some parent row with ``col = v`` has children, else the next such value (no draw: the
    answer must return rows on the fixture, and the rest of the dataset must not shift)."""
    par = s.t(r.parent)
    child_keys = {row[r.fk] for row in schema_data(s.name).rows(r.child)}
    having = sorted({row[col] for row in schema_data(s.name).rows(r.parent)
                     if row[par.pk] in child_keys and row[col] is not None}, key=str)
    if not having or v in having:
        return v
    return next((h for h in having if str(h) > str(v)), having[0])


def _join_filter(p: Picker, s: Schema) -> Built:
    r = _rel(p, s, lambda r: bool(s.t(r.parent).cats))
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    col, v = cat_of(p, par)
    v = _with_children(s, r, col.name, v)
    return ({"child_many": c.many, "clabels": p.choice(c.label_words), "verb": p.choice(r.verb),
             "parent_many": par.many, "parent_one": par.one, "pcol": p.choice(col.words), "v": v},
            f"SELECT {label_sql(c, c.alias)} FROM {c.name} {c.alias} JOIN {par.name} {par.alias} ON {_on(r, s)} "
            f"WHERE {par.alias}.{col.name} = {lit(v)}")


def _join_count(p: Picker, s: Schema) -> Built:
    r = _rel(p, s)
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    alias = f"num_{c.name}"
    group = ", ".join(dict.fromkeys([f"{par.alias}.{par.pk}", *(f"{par.alias}.{x}" for x in par.label)]))
    return ({"child_many": c.many, "parent_many": par.many, "parent_one": par.one, "plabels": p.choice(
        par.label_words)},
            f"SELECT {label_sql(par, par.alias)}, COUNT(*) AS {alias} FROM {par.name} {par.alias} "
            f"JOIN {c.name} {c.alias} ON {_on(r, s)} GROUP BY {group} ORDER BY {alias} DESC")


def _join_top(p: Picker, s: Schema) -> Built:
    r = _rel(p, s, lambda r: bool(s.t(r.child).nums))
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    num = p.choice(c.nums)
    alias = f"total_{num.name}"
    n = p.rng.randint(3, 10)
    group = ", ".join(dict.fromkeys([f"{par.alias}.{par.pk}", *(f"{par.alias}.{x}" for x in par.label)]))
    return ({"child_many": c.many, "parent_many": par.many, "parent_one": par.one, "num": p.choice(num.words),
             "n": n},
            f"SELECT {label_sql(par, par.alias)}, SUM({c.alias}.{num.name}) AS {alias} FROM {par.name} {par.alias} "
            f"JOIN {c.name} {c.alias} ON {_on(r, s)} GROUP BY {group} ORDER BY {alias} DESC LIMIT {n}")


def _join3(p: Picker, s: Schema) -> Built:
    br = p.choice(s.bridges) if s.bridges else None
    if br is None or not s.t(br.c).cats:
        return None
    a, b, c = s.t(br.a), s.t(br.b), s.t(br.c)
    col, v = cat_of(p, c)
    return ({"a_many": a.many, "alabels": p.choice(a.label_words), "link": p.choice(br.link), "c_many": c.many,
             "ccol": p.choice(col.words), "v": v},
            f"SELECT DISTINCT {label_sql(a, a.alias)} FROM {a.name} {a.alias} "
            f"JOIN {b.name} {b.alias} ON {b.alias}.{br.a_fk} = {a.alias}.{a.pk} "
            f"JOIN {c.name} {c.alias} ON {c.alias}.{c.pk} = {b.alias}.{br.c_fk} WHERE {c.alias}.{col.name} = {lit(v)}")


def _join3_sum(p: Picker, s: Schema) -> Built:
    brs = [br for br in s.bridges if br.b_num is not None and s.t(br.a).cats and s.t(br.c).cats]
    if not brs:
        return None
    br = p.choice(brs)
    assert br.b_num is not None
    a, b, c = s.t(br.a), s.t(br.b), s.t(br.c)
    acol, v = cat_of(p, a)
    ccol = p.choice(c.cats)
    alias = f"total_{br.b_num.name}"
    return ({"a_many": a.many, "acol": p.choice(acol.words), "v": v, "c_one": c.one, "ccol": p.choice(ccol.words),
             "num": p.choice(br.b_num.words)},
            f"SELECT {c.alias}.{ccol.name}, SUM({b.alias}.{br.b_num.name}) AS {alias} FROM {b.name} {b.alias} "
            f"JOIN {a.name} {a.alias} ON {a.alias}.{a.pk} = {b.alias}.{br.a_fk} "
            f"JOIN {c.name} {c.alias} ON {c.alias}.{c.pk} = {b.alias}.{br.c_fk} "
            f"WHERE {a.alias}.{acol.name} = {lit(v)} GROUP BY {c.alias}.{ccol.name}")


def _sub_avg(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums)))
    col = p.choice(t.nums)
    above = p.choice((True, False))
    return ({**slots_for(p, t), "col": p.choice(col.words), "side": p.choice(
        ("above", "higher than", "greater than") if above else ("below", "less than", "under"))},
            f"SELECT {label_sql(t)}, {col.name} FROM {t.name} WHERE {col.name} {'>' if above else '<'} "
            f"(SELECT AVG({col.name}) FROM {t.name})")


def _sub_in(p: Picker, s: Schema) -> Built:
    r = _rel(p, s, lambda r: bool(s.t(r.child).cats))
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    col, v = cat_of(p, c)
    return ({"parent_many": par.many, "plabels": p.choice(par.label_words), "child_many": c.many,
             "ccol": p.choice(col.words), "v": v},
            f"SELECT {label_sql(par)} FROM {par.name} WHERE {par.pk} IN "
            f"(SELECT {r.fk} FROM {c.name} WHERE {col.name} = {lit(v)})")


def _not_exists(p: Picker, s: Schema) -> Built:
    r = _rel(p, s)
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    return ({"parent_many": par.many, "plabels": p.choice(par.label_words), "none": p.choice(r.none)},
            f"SELECT {label_sql(par, par.alias)} FROM {par.name} {par.alias} WHERE NOT EXISTS "
            f"(SELECT 1 FROM {c.name} {c.alias} WHERE {_on(r, s)})")


def _cte_above_avg(p: Picker, s: Schema) -> Built:
    r = _rel(p, s, lambda r: bool(s.t(r.child).nums))
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    num = p.choice(c.nums)
    alias = f"sum_{num.name}"
    return ({"parent_many": par.many, "parent_one": par.one, "child_many": c.many, "num": p.choice(num.words)},
            f"WITH totals AS (SELECT {r.fk}, SUM({num.name}) AS {alias} FROM {c.name} GROUP BY {r.fk}) "
            f"SELECT {label_sql(par, par.alias)}, totals.{alias} FROM totals "
            f"JOIN {par.name} {par.alias} ON {par.alias}.{par.pk} = totals.{r.fk} "
            f"WHERE totals.{alias} > (SELECT AVG({alias}) FROM totals)")


def _cte_count(p: Picker, s: Schema) -> Built:
    r = _rel(p, s)
    if r is None:
        return None
    c, par = s.t(r.child), s.t(r.parent)
    counts: dict[Any, int] = {}
    for row in schema_data(s.name).rows(c.name):
        counts[row[r.fk]] = counts.get(row[r.fk], 0) + 1
    ordered = sorted(counts.values())
    n = ordered[int(p.rng.uniform(0.3, 0.9) * (len(ordered) - 1))]
    alias = f"num_{c.name}"
    return ({"parent_many": par.many, "child_many": c.many, "n": n, "plabels": p.choice(par.label_words)},
            f"WITH counts AS (SELECT {r.fk}, COUNT(*) AS {alias} FROM {c.name} GROUP BY {r.fk}) "
            f"SELECT {label_sql(par, par.alias)}, counts.{alias} FROM counts "
            f"JOIN {par.name} {par.alias} ON {par.alias}.{par.pk} = counts.{r.fk} "
            f"WHERE counts.{alias} >= {n} ORDER BY counts.{alias} DESC")


def _window_rank(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool((t.filters or t.groups) and t.nums)))
    col = p.choice((*t.filters, *t.groups))
    num = p.choice(t.nums)
    return ({**slots_for(p, t), "col": p.choice(col.words), "num": p.choice(num.words)},
            f"SELECT {label_sql(t, None, col.name, num.name)}, "
            f"RANK() OVER (PARTITION BY {col.name} ORDER BY {num.name} DESC) AS rnk FROM {t.name}")


def _window_top_per_group(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool((t.filters or t.groups) and t.nums)))
    col = p.choice((*t.filters, *t.groups))
    num = p.choice(t.nums)
    n = p.choice((1, 1, 2, 3))
    cols = label_sql(t, None, col.name, num.name)
    inner = f"SELECT {cols}, RANK() OVER (PARTITION BY {col.name} ORDER BY {num.name} DESC) AS rnk FROM {t.name}"
    return ({**slots_for(p, t), "col": p.choice(col.words), "num": p.choice(num.words), "n": n},
            f"SELECT {cols} FROM ({inner}) ranked WHERE rnk <= {n}")


def _window_running(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool(t.nums) and t.date is not None))
    assert t.date is not None
    num = p.choice(t.nums)
    d = t.date.name
    return ({**slots_for(p, t), "num": p.choice(num.words), "date": p.choice(t.date.words)},
            f"SELECT {d}, {num.name}, SUM({num.name}) OVER (ORDER BY {d}) AS running_total FROM {t.name} ORDER BY {d}")


def _window_vs_avg(p: Picker, s: Schema) -> Built:
    t = _pick(p, _tables_with(s, lambda t: bool((t.filters or t.groups) and t.nums)))
    col = p.choice((*t.filters, *t.groups))
    num = p.choice(t.nums)
    return ({**slots_for(p, t), "col": p.choice(col.words), "num": p.choice(num.words)},
            f"SELECT {label_sql(t, None, col.name, num.name)}, "
            f"AVG({num.name}) OVER (PARTITION BY {col.name}) AS avg_{num.name} FROM {t.name}")


def T(train: tuple[str, ...], held_out: tuple[str, ...]) -> Templates:
    return Templates(train, held_out)


INTENTS: tuple[Intent, ...] = (
    Intent("select_eq", T((
        "List the {labels} of {many} whose {col} is {v}.",
        "Which {many} have {col} {v}?",
        "Show {many} with {col} = '{v}'.",
        "Find all {many} where the {col} is {v}.",
        "Give me the {labels} of every {one} with {col} {v}.",
        "{many} whose {col} equals {v}",
        "Get {labels} of {many} where {col} is '{v}'",
    ), (
        "I'd like the {labels} for each {one} that has {v} as its {col}.",
        "Pull up {many} filed under {col} {v}.",
    )), _select_eq),
    Intent("select_in", T((
        "List {many} whose {col} is {v1} or {v2}.",
        "Which {many} have {col} {v1} or {v2}?",
        "Show the {labels} of {many} with {col} in ({v1}, {v2}).",
        "Find {many} where {col} is either {v1} or {v2}.",
        "Give me {many} with a {col} of {v1} or {v2}.",
        "{many} with {col} {v1} or {v2}",
    ), (
        "Pull up {many} whose {col} falls among {v1} and {v2}.",
        "I want every {one} with {v1} or alternatively {v2} as {col}.",
    )), _select_in),
    Intent("count_eq", T((
        "How many {many} have {col} {v}?",
        "Count the {many} whose {col} is {v}.",
        "Number of {many} with {col} = '{v}'",
        "What is the number of {many} where {col} is {v}?",
        "Count {many} with {col} {v}.",
        "How many {many} are there with a {col} of {v}?",
    ), (
        "Tally up the {many} carrying {col} {v}.",
        "What's the headcount of {many} for {col} {v}?",
    )), _count_eq),
    Intent("select_num", T((
        "List {many} with {col} {cmp} {n}.",
        "Which {many} have a {col} {cmp} {n}?",
        "Show the {labels} and {col} of {many} whose {col} is {cmp} {n}.",
        "Find {many} where {col} is {cmp} {n}.",
        "{many} with {col} {cmp} {n}",
        "Get all {many} having {col} {cmp} {n}.",
    ), (
        "Pull every {one} whose {col} comes in {cmp} {n}.",
        "I need the {many} where the {col} sits {cmp} {n}.",
    )), _select_num),
    Intent("between", T((
        "List {many} with {col} between {lo} and {hi}.",
        "Which {many} have a {col} from {lo} to {hi}?",
        "Show {many} whose {col} is between {lo} and {hi} inclusive.",
        "Find {many} with {col} in the range {lo} to {hi}.",
        "{many} with {col} between {lo} and {hi}",
        "Get the {labels} of {many} where {col} is {lo}-{hi}.",
    ), (
        "Pull up {many} whose {col} falls within {lo} and {hi}.",
        "Narrow {many} to a {col} spanning {lo} through {hi}.",
    )), _between),
    Intent("eq_and_num", T((
        "List {many} with {col} {v} and {num} {cmp} {n}.",
        "Which {many} have {col} {v} and a {num} {cmp} {n}?",
        "Show {many} where {col} is {v} and {num} is {cmp} {n}.",
        "Find {col} {v} {many} with {num} {cmp} {n}.",
        "{many} with {col} = '{v}' and {num} {cmp} {n}",
        "Get {many} whose {col} is {v} with {num} {cmp} {n}.",
    ), (
        "Among {many} with {col} {v}, keep the ones whose {num} is {cmp} {n}.",
        "I need {many} for {col} {v} provided the {num} is {cmp} {n}.",
    )), _eq_and_num),
    Intent("like_prefix", T((
        "List {many} whose {col} starts with {v}.",
        "Which {many} have a {col} beginning with '{v}'?",
        "Find {many} with {col} starting with \"{v}\".",
        "Show the {labels} of {many} whose {col} begins with {v}.",
        "{many} with a {col} that starts with {v}",
        "Get {many} where {col} has the prefix {v}.",
    ), (
        "Pull up {many} whose {col} opens with {v}.",
        "Any {many} where the {col} leads with {v}?",
    )), _like_prefix),
    Intent("like_contains", T((
        "List {many} whose {col} contains {v}.",
        "Which {many} have '{v}' in their {col}?",
        "Find {many} with \"{v}\" somewhere in the {col}.",
        "Show the {labels} of {many} whose {col} includes {v}.",
        "{many} with {v} in the {col}",
        "Get {many} where the {col} mentions {v}.",
    ), (
        "Pull up {many} having {v} anywhere within the {col}.",
        "I'm after {many} whose {col} embeds the text {v}.",
    )), _like_contains),
    Intent("is_null", T((
        "Which {many} {state}?",
        "List the {many} that {state}.",
        "Show {many} that {state}.",
        "Find all {many} which {state}.",
        "Give me the {labels} of {many} that {state}.",
        "{many} that {state}",
    ), (
        "I need to know which {many} {state}.",
        "Pull up every {one} among {many} that {state}.",
    )), _is_null),
    Intent("not_null", T((
        "Which {many} {state}?",
        "List the {many} that {state}.",
        "Show {many} that {state}.",
        "Find all {many} which {state}.",
        "Give me the {labels} of {many} that {state}.",
        "{many} that {state}",
    ), (
        "I need to know which {many} {state}.",
        "Pull up every {one} among {many} that {state}.",
    )), _not_null),
    Intent("top", T((
        "Top {n} {many} by {col}.",
        "Which {n} {many} have the highest {col}?",
        "Show the {n} {many} with the largest {col}.",
        "List {n} {many} sorted by {col} descending.",
        "Give me the {n} {many} with the most {col}.",
        "What are the {n} {many} with the highest {col}?",
    ), (
        "Rank {many} on {col} and keep the leading {n}.",
        "The {n} biggest {col} values among {many}, please.",
    )), _top),
    Intent("bottom", T((
        "Bottom {n} {many} by {col}.",
        "Which {n} {many} have the lowest {col}?",
        "Show the {n} {many} with the smallest {col}.",
        "List {n} {many} sorted by {col} ascending.",
        "Give me the {n} {many} with the least {col}.",
        "What are the {n} {many} with the lowest {col}?",
    ), (
        "Rank {many} on {col} from the bottom and keep {n}.",
        "The {n} tiniest {col} values among {many}, please.",
    )), _bottom),
    Intent("latest", T((
        "The {n} most recent {many} by {date}.",
        "Show the latest {n} {many}.",
        "List the {n} newest {many} by {date}.",
        "Which {n} {many} have the most recent {date}?",
        "Give me the last {n} {many} by {date}.",
        "{n} latest {many}, newest first",
    ), (
        "Fetch {n} {many}, freshest {date} on top.",
        "What were the final {n} {many} by {date}?",
    )), _latest),
    Intent("distinct", T((
        "List the distinct {col} values of {many}.",
        "Which {col} values appear among {many}?",
        "Show every different {col} in {table}.",
        "What are the unique {col} values of {many}?",
        "Distinct {col} of {many}",
        "Give me each {col} that occurs in {many}, without duplicates.",
    ), (
        "Enumerate the separate {col} values found in {many}.",
        "What set of {col} values do {many} cover?",
    )), _distinct),
    Intent("count_distinct", T((
        "How many distinct {col} values do {many} have?",
        "Count the unique {col} values of {many}.",
        "Number of different {col} values in {table}",
        "How many different {col} values appear among {many}?",
        "Count distinct {col} in {many}.",
        "What is the number of unique {col} values across {many}?",
    ), (
        "Tally the separate {col} values found in {many}.",
        "How varied is {col} across {many}, as a count?",
    )), _count_distinct),
    Intent("agg", T((
        "What is the {stat} {col} of {many}?",
        "Compute the {stat} {col} across all {many}.",
        "{stat} {col} of {many}",
        "Give me the {stat} {col} over {many}.",
        "Calculate the {stat} of {col} in {table}.",
        "Show the {stat} {col} of all {many}.",
    ), (
        "Across {many}, how large is the {stat} {col}?",
        "Report the {stat} {col} seen in {many}.",
    )), _agg),
    Intent("agg_eq", T((
        "What is the {stat} {num} of {many} with {col} {v}?",
        "Compute the {stat} {num} for {many} where {col} is {v}.",
        "{stat} {num} of {col} {v} {many}",
        "Give me the {stat} {num} over {many} whose {col} is {v}.",
        "Calculate the {stat} of {num} for {many} with {col} = '{v}'.",
        "For {col} {v}, show the {stat} {num} of {many}.",
    ), (
        "Across {many} with {col} {v}, how large is the {stat} {num}?",
        "Report the {stat} {num} seen in {many} when {col} is {v}.",
    )), _agg_eq),
    Intent("group_count", T((
        "How many {many} are there per {col}?",
        "Count {many} by {col}, largest first.",
        "Number of {many} for each {col}, sorted by count descending",
        "Show the count of {many} per {col}, most first.",
        "Group {many} by {col} and count them, highest count first.",
        "For each {col}, how many {many} are there? Sort by the count descending.",
    ), (
        "Break {many} down by {col} with counts, biggest group on top.",
        "Tally {many} per {col}, busiest first.",
    )), _group_count),
    Intent("group_agg", T((
        "What is the {stat} {num} of {many} per {col}?",
        "Show the {stat} {num} for each {col}.",
        "{stat} {num} of {many} by {col}",
        "Compute the {stat} {num} grouped by {col}.",
        "For each {col}, give the {stat} {num} of {many}.",
        "Group {many} by {col} and show the {stat} {num}.",
    ), (
        "Split {many} on {col}, then report the {stat} {num} in each.",
        "Per-{col} breakdown of the {stat} {num} of {many}.",
    )), _group_agg),
    Intent("having", T((
        "Which {col} values have more than {n} {many}?",
        "List each {col} with over {n} {many}, with the count.",
        "Show {col} groups of {many} whose count exceeds {n}.",
        "Find {col} values shared by more than {n} {many}.",
        "For which {col} are there more than {n} {many}?",
        "Group {many} by {col} and keep groups larger than {n}.",
    ), (
        "Only the {col} buckets holding upwards of {n} {many}, with counts.",
        "Which {col} values account for a count of {many} greater than {n}?",
    )), _having),
    Intent("date_range", T((
        "List {many} with {date} from {start} up to but not including {end}.",
        "Which {many} have a {date} on or after {start} and before {end}?",
        "Show {many} whose {date} is between {start} (inclusive) and {end} (exclusive).",
        "Find {many} with {date} >= {start} and < {end}.",
        "{many} with {date} in [{start}, {end})",
        "Get {many} dated from {start} to before {end}.",
    ), (
        "Pull up {many} whose {date} lands in the window starting {start} and ending just before {end}.",
        "I need {many} with a {date} no earlier than {start} and strictly earlier than {end}.",
    )), _date_range),
    Intent("date_after", T((
        "List {many} with {date} on or after {start}.",
        "Which {many} have a {date} since {start}?",
        "Show {many} whose {date} is {start} or later.",
        "Find {many} with {date} >= {start}.",
        "{many} from {start} onwards by {date}",
        "Get {many} with a {date} of at least {start}.",
    ), (
        "Pull up {many} whose {date} is no earlier than {start}.",
        "Everything in {many} dated {start} and after, by {date}.",
    )), _date_after),
    Intent("year_count", T((
        "How many {many} have a {date} in {year}?",
        "Count the {many} with {date} in the year {year}.",
        "Number of {many} whose {date} falls in {year}",
        "How many {many} were there in {year} by {date}?",
        "Count {many} by {date} year = {year}.",
        "What is the number of {many} with a {year} {date}?",
    ), (
        "Tally the {many} whose {date} belongs to calendar year {year}.",
        "For {year}, what's the count of {many} going by {date}?",
    )), _year_count),
    Intent("per_period", T((
        "How many {many} are there per {unit} of {date}?",
        "Count {many} by {unit} of {date}, in order.",
        "Number of {many} per {unit} by {date}, oldest first",
        "Show the count of {many} for each {unit} of {date}, chronologically.",
        "Group {many} by {unit} of {date} and count them in time order.",
        "For each {unit}, how many {many} are there by {date}? Order by {unit}.",
    ), (
        "Chart {many} counts bucketed per {unit} of {date}, earliest bucket first.",
        "Give a {unit}-by-{unit} tally of {many} using {date}, in sequence.",
    )), _per_month),
    Intent("join_filter", T((
        "List the {clabels} of {child_many} {verb} {parent_many} whose {pcol} is {v}.",
        "Which {child_many} are {verb} {parent_many} with {pcol} {v}?",
        "Show {child_many} {verb} a {parent_one} with {pcol} = '{v}'.",
        "Find all {child_many} {verb} {parent_many} where {pcol} is {v}.",
        "{child_many} {verb} {parent_many} with {pcol} {v}",
        "Get the {clabels} of {child_many} {verb} {parent_many} having {pcol} {v}.",
    ), (
        "Pull up {child_many} {verb} any {parent_one} that has {v} as {pcol}.",
        "I need the {child_many} {verb} {parent_many} located under {pcol} {v}.",
    )), _join_filter),
    Intent("join_count", T((
        "How many {child_many} does each {parent_one} have?",
        "Count {child_many} per {parent_one}, most first.",
        "Number of {child_many} for each {parent_one}, sorted by count descending",
        "Show each {parent_one} with its number of {child_many}, highest first.",
        "List {parent_many} with how many {child_many} they have, most first.",
        "For every {parent_one}, count the {child_many}; order by the count descending.",
    ), (
        "Rank {parent_many} by their tally of {child_many}, largest first.",
        "Give a per-{parent_one} count of {child_many}, biggest on top.",
    )), _join_count),
    Intent("join_top", T((
        "Top {n} {parent_many} by total {num} of their {child_many}.",
        "Which {n} {parent_many} have the highest total {num} across {child_many}?",
        "Show the {n} {parent_many} with the largest sum of {child_many} {num}.",
        "List {n} {parent_many} by summed {num} of {child_many}, descending.",
        "Give me the {n} {parent_many} whose {child_many} add up to the most {num}.",
        "What are the {n} {parent_many} with the greatest total {child_many} {num}?",
    ), (
        "Rank {parent_many} on the combined {num} of their {child_many} and keep {n}.",
        "The {n} {parent_many} leading in aggregate {num} over {child_many}.",
    )), _join_top),
    Intent("join3", T((
        "Which {a_many} {link} {c_many} with {ccol} {v}?",
        "List the {alabels} of {a_many} that {link} {c_many} whose {ccol} is {v}.",
        "Find {a_many} that {link} a {ccol} {v} item from {c_many}.",
        "Show distinct {a_many} that {link} {c_many} where {ccol} = '{v}'.",
        "{a_many} that {link} {c_many} with {ccol} {v}",
        "Get every {a_many} entry that {link} {c_many} having {ccol} {v}.",
    ), (
        "Pull up the {a_many} that {link} any of the {c_many} filed under {ccol} {v}.",
        "I need the {alabels} of {a_many} linked, through {link}, to {c_many} with {ccol} {v}.",
    )), _join3),
    Intent("join3_sum", T((
        "Total {num} per {c_one} {ccol} for {a_many} with {acol} {v}.",
        "For {a_many} whose {acol} is {v}, sum the {num} by {c_one} {ccol}.",
        "Show the total {num} by {c_one} {ccol} among {a_many} with {acol} {v}.",
        "What is the total {num} for each {c_one} {ccol}, counting only {a_many} with {acol} {v}?",
        "Sum {num} grouped by {c_one} {ccol} where the {acol} of {a_many} is {v}.",
        "Group by {c_one} {ccol} and total the {num}, limited to {acol} {v} {a_many}.",
    ), (
        "Restricting to {a_many} with {acol} {v}, how much {num} goes to each {c_one} {ccol}?",
        "Break the {num} down per {c_one} {ccol} for {a_many} tagged {acol} {v}.",
    )), _join3_sum),
    Intent("sub_avg", T((
        "Which {many} have a {col} {side} the average?",
        "List {many} whose {col} is {side} the average {col}.",
        "Show {many} with {col} {side} the mean of all {many}.",
        "Find {many} where {col} is {side} the overall average.",
        "{many} with {col} {side} average",
        "Get the {labels} of {many} whose {col} is {side} the average of the table.",
    ), (
        "Pull up {many} sitting {side} the typical {col} (the mean over every {one}).",
        "Compared with the all-{many} average, which {many} have {col} {side} it?",
    )), _sub_avg),
    Intent("sub_in", T((
        "Which {parent_many} have {child_many} with {ccol} {v}?",
        "List {parent_many} that have at least one of their {child_many} with {ccol} {v}.",
        "Show the {plabels} of {parent_many} with any {child_many} whose {ccol} is {v}.",
        "Find {parent_many} having {child_many} where {ccol} = '{v}'.",
        "{parent_many} with {child_many} of {ccol} {v}",
        "Get {parent_many} linked to {child_many} with {ccol} {v}.",
    ), (
        "Pull up {parent_many} for which some of their {child_many} carry {ccol} {v}.",
        "I need {parent_many} owning one or more {child_many} tagged {ccol} {v}.",
    )), _sub_in),
    Intent("not_exists", T((
        "Which {parent_many} {none}?",
        "List the {plabels} of {parent_many} that {none}.",
        "Show {parent_many} that {none}.",
        "Find all {parent_many} which {none}.",
        "{parent_many} that {none}",
        "Get every one of the {parent_many} that {none}.",
    ), (
        "I need to know which {parent_many} {none}.",
        "Spot the {parent_many} that {none}, please.",
    )), _not_exists),
    Intent("cte_above_avg", T((
        "Which {parent_many} have a total {child_many} {num} above the average total?",
        "List {parent_many} whose summed {num} of {child_many} is higher than the average per {parent_one}.",
        "Show {parent_many} with total {child_many} {num} greater than the mean total across {parent_many}.",
        "Find {parent_many} where the sum of {child_many} {num} beats the per-{parent_one} average.",
        "Using a CTE, list {parent_many} whose total {num} over {child_many} exceeds the average total.",
        "{parent_many} with above-average total {child_many} {num}",
    ), (
        "Among {parent_many}, who tops the average when you add up the {num} of their {child_many}?",
        "Pull up {parent_many} that outdo the typical per-{parent_one} sum of {child_many} {num}.",
    )), _cte_above_avg),
    Intent("cte_count", T((
        "Which {parent_many} have at least {n} {child_many}? Show the counts, most first.",
        "List {parent_many} with {n} or more {child_many}, with their counts, highest first.",
        "Show the {plabels} of {parent_many} having at least {n} {child_many}, sorted by count descending.",
        "Find {parent_many} that have no fewer than {n} {child_many}, most first.",
        "Using a CTE, count {child_many} per {parent_many} and keep those with at least {n}, highest first.",
        "{parent_many} with {n}+ {child_many} and their counts, descending",
    ), (
        "Pull up {parent_many} reaching a tally of {n} {child_many} or beyond, biggest first.",
        "I need {parent_many} whose count of {child_many} hits {n} at minimum, ordered by it downward.",
    )), _cte_count),
    Intent("window_rank", T((
        "Rank {many} by {num} within each {col}.",
        "Show each {one} with its {num} rank inside its {col}, highest first.",
        "For every {col}, rank the {many} by {num} descending.",
        "List {many} with a rank of {num} per {col}.",
        "Give the rank of each {one} by {num} within its {col}, using RANK().",
        "Rank the {many} in each {col} by {num} from highest to lowest.",
    ), (
        "Number the {many} by descending {num}, restarting the ranking at each {col}.",
        "Within every {col} partition, what rank does each {one} hold on {num}?",
    )), _window_rank),
    Intent("window_top", T((
        "Top {n} {many} by {num} in each {col}.",
        "Show the {n} highest-{num} {many} per {col}.",
        "For each {col}, list the {many} ranked in the top {n} by {num}.",
        "Which {many} are in the top {n} by {num} within their {col}?",
        "Give the top {n} {many} by {num} for every {col}, ties included.",
        "List the best {n} {many} by {num} per {col}.",
    ), (
        "Per {col}, keep just the leading {n} {many} on {num}.",
        "In every {col}, which {many} sit among the {n} biggest by {num}?",
    )), _window_top_per_group),
    Intent("window_running", T((
        "Show the running total of {num} of {many} ordered by {date}.",
        "Cumulative {num} of {many} over {date}.",
        "List {many} by {date} with a running sum of {num}.",
        "Compute the running total of {num} for {many} in {date} order.",
        "Give each {one}'s {num} and the cumulative {num} so far, by {date}.",
        "Running sum of {many} {num} over time ({date}).",
    ), (
        "Track how the {num} of {many} accumulates as {date} advances.",
        "Accumulate {num} across {many} chronologically by {date}.",
    )), _window_running),
    Intent("window_vs_avg", T((
        "Show each {one} with its {num} and the average {num} of its {col}.",
        "List {many} alongside the average {num} for their {col}.",
        "For every {one}, give the {num} and the {col} average {num}.",
        "Compare each {one}'s {num} to the average {num} within its {col}.",
        "{many} with their {num} and the mean {num} per {col}",
        "Show {many} with a per-{col} average of {num} using a window function.",
    ), (
        "Next to every {one}, put the typical {num} of the {col} it belongs to.",
        "Annotate {many} with the {col}-wide mean {num}.",
    )), _window_vs_avg),
)


def make_record(p: Picker) -> Record:
    """Draw one record: an intent, a schema it applies to, a template, values."""
    intent: Intent = p.choice(INTENTS)
    names = list(SCHEMA_NAMES)
    p.rng.shuffle(names)
    built: Built = None
    for name in names:  # the first schema (in random order) the intent applies to
        schema = SCHEMAS[name]
        start = len(p.drawn)
        try:
            built = intent.build(p, schema)
        except NotApplicable:
            built = None
        if built is not None:
            break
        del p.drawn[start:]
    if built is None:
        raise AssertionError(f"intent {intent.name} applies to no schema")
    slots, sql = built
    template = p.template(intent.templates)
    return Record(
        fields={"Dialect": "postgres", "Task": "text_to_sql", "Schema": DDL[schema.name]},
        question=fill(template, slots),
        answer=sql,
        intent=intent.name,
        template=template,
        values=tuple(p.drawn),
    )


def build(expert: Expert, train_size: int, eval_size: int, seed: int) -> dict[str, list[Record]]:
    """Train and eval records of the ``sql`` generator."""
    return build_splits(make_record, "sql", train_size, eval_size, seed)


def held_out_values() -> set[str]:
    """Values only eval questions use."""
    return {v for vocab in V.values() for v in vocab.held_out}


def held_out_words() -> set[str]:
    """Comparison and statistic words only eval questions use."""
    return {w for words in (*CMP_HELD_OUT.values(), *STATS_HELD_OUT.values()) for w in words}
