"""Words that make generated stores and products look real. Data only."""

STORE_BANNERS = ["FreshWay", "Harvest Market", "GreenLeaf Grocers", "Corner Basket", "Daily Fare"]

NEIGHBOURHOODS = [
    "Downtown", "Riverside", "Northgate", "Southpoint", "Eastwood", "Westfield", "Lakeside",
    "Hillcrest", "Old Town", "Midtown", "Harbor View", "Oak Park", "Maple Grove", "Cedar Hills",
    "Pine Ridge", "Brookside", "Fairview", "Greenwood", "Highland", "Kingsway", "Meadowbrook",
    "Parkside", "Queens Court", "Rosedale", "Stonebridge", "Sunnyvale", "University", "Valley",
    "Willow Creek", "Crossroads", "Market Square", "Station Road", "Union Plaza", "Bayshore",
    "Canal Street", "Elm Heights", "Forest Glen", "Garden City", "Ironworks", "Juniper Flats",
]  # fmt: skip

CITIES = [
    "Seattle, WA", "Portland, OR", "San Francisco, CA", "Los Angeles, CA", "San Diego, CA",
    "Sacramento, CA", "Phoenix, AZ", "Tucson, AZ", "Las Vegas, NV", "Salt Lake City, UT",
    "Denver, CO", "Boulder, CO", "Albuquerque, NM", "Austin, TX", "Dallas, TX", "Houston, TX",
    "San Antonio, TX", "Oklahoma City, OK", "Kansas City, MO", "St. Louis, MO", "Omaha, NE",
    "Minneapolis, MN", "Madison, WI", "Milwaukee, WI", "Chicago, IL", "Indianapolis, IN",
    "Columbus, OH", "Cleveland, OH", "Detroit, MI", "Grand Rapids, MI", "Louisville, KY",
    "Nashville, TN", "Memphis, TN", "Atlanta, GA", "Savannah, GA", "Charlotte, NC",
    "Raleigh, NC", "Charleston, SC", "Jacksonville, FL", "Orlando, FL", "Tampa, FL",
    "Miami, FL", "Richmond, VA", "Washington, DC", "Baltimore, MD", "Philadelphia, PA",
    "Pittsburgh, PA", "Newark, NJ", "New York, NY", "Buffalo, NY", "Hartford, CT",
    "Providence, RI", "Boston, MA", "Portland, ME", "Burlington, VT", "Boise, ID",
    "Spokane, WA", "Anchorage, AK", "Honolulu, HI", "New Orleans, LA",
]  # fmt: skip

# category -> (weight in the assortment, shelf price range in cents, products, pack sizes)
CATEGORIES: dict[str, tuple[float, tuple[int, int], list[str], list[str]]] = {
    "Produce": (
        0.14, (49, 899),
        ["Bananas", "Gala Apples", "Navel Oranges", "Baby Spinach", "Romaine Hearts",
         "Roma Tomatoes", "Yellow Onions", "Russet Potatoes", "Avocados", "Blueberries",
         "Strawberries", "Carrots", "Broccoli Crowns", "Lemons", "Cucumbers", "Red Grapes"],
        ["1 lb", "2 lb", "3 lb bag", "5 oz", "1 ct", "6 ct", "pint"],
    ),
    "Dairy": (
        0.10, (99, 799),
        ["Whole Milk", "2% Milk", "Greek Yogurt", "Cheddar Cheese", "Mozzarella",
         "Salted Butter", "Large Eggs", "Cream Cheese", "Sour Cream", "Cottage Cheese",
         "Oat Milk", "Heavy Cream"],
        ["8 oz", "16 oz", "32 oz", "half gallon", "1 gallon", "12 ct", "18 ct"],
    ),
    "Bakery": (
        0.07, (149, 699),
        ["Sourdough Loaf", "Whole Wheat Bread", "Bagels", "Croissants", "Dinner Rolls",
         "Blueberry Muffins", "Tortillas", "Baguette", "Cinnamon Rolls", "Pita Bread"],
        ["1 ct", "4 ct", "6 ct", "8 ct", "12 ct", "20 oz"],
    ),
    "Meat & Seafood": (
        0.09, (399, 2499),
        ["Chicken Breast", "Ground Beef 80/20", "Pork Chops", "Salmon Fillet", "Bacon",
         "Turkey Breast Slices", "Ribeye Steak", "Shrimp", "Italian Sausage", "Chicken Thighs"],
        ["8 oz", "12 oz", "1 lb", "2 lb", "family pack"],
    ),
    "Pantry": (
        0.16, (79, 1299),
        ["Spaghetti", "Basmati Rice", "Black Beans", "Peanut Butter", "Olive Oil",
         "Tomato Sauce", "Chicken Broth", "Rolled Oats", "Honey", "All-Purpose Flour",
         "Granulated Sugar", "Canned Tuna", "Mac & Cheese", "Ketchup", "Soy Sauce"],
        ["12 oz", "15 oz", "16 oz", "24 oz", "32 oz", "2 lb", "5 lb"],
    ),
    "Frozen": (
        0.09, (199, 1199),
        ["Pepperoni Pizza", "Vanilla Ice Cream", "Frozen Peas", "Chicken Nuggets",
         "Fish Sticks", "Waffles", "Mixed Berries", "Burritos", "Veggie Burgers", "Dumplings"],
        ["10 oz", "12 oz", "16 oz", "1.5 qt", "24 ct", "family size"],
    ),
    "Snacks": (
        0.12, (99, 699),
        ["Potato Chips", "Tortilla Chips", "Pretzels", "Trail Mix", "Granola Bars",
         "Popcorn", "Crackers", "Dark Chocolate", "Salsa", "Hummus", "Almonds"],
        ["1 oz", "5 oz", "8 oz", "10 oz", "13 oz", "6 ct"],
    ),
    "Beverages": (
        0.11, (89, 1999),
        ["Sparkling Water", "Orange Juice", "Cola", "Cold Brew Coffee", "Green Tea",
         "Ground Coffee", "Lemonade", "Sports Drink", "Kombucha", "Apple Juice"],
        ["12 oz", "16.9 oz", "52 oz", "2 L", "6 pk", "12 pk", "24 pk"],
    ),
    "Household": (
        0.07, (149, 2499),
        ["Paper Towels", "Toilet Paper", "Dish Soap", "Laundry Detergent", "Trash Bags",
         "Aluminum Foil", "Sponges", "All-Purpose Cleaner", "Zip Bags"],
        ["1 ct", "6 rolls", "12 rolls", "30 ct", "64 oz", "100 oz"],
    ),
    "Personal Care": (
        0.05, (199, 1899),
        ["Shampoo", "Toothpaste", "Body Wash", "Deodorant", "Hand Soap", "Sunscreen SPF 50",
         "Cotton Swabs", "Razors"],
        ["3 oz", "6 oz", "12 oz", "16 oz", "4 ct", "500 ct"],
    ),
}  # fmt: skip

BRANDS = [
    "Harvest Select", "Green Valley", "Sunny Acres", "Blue Ridge", "Golden Crest",
    "Prairie Farms", "Coastal Kitchen", "Mountain Spring", "Orchard Lane", "Red Barn",
    "Silver Spoon", "True North", "Wild Meadow", "Evergreen", "Hearthstone", "Oak & Honey",
    "Pure Origins", "Riverbend", "Simply Good", "Maple Hollow", "Brightside", "Homestead",
    "Northern Lights", "Bayside", "Cloverfield",
]  # fmt: skip

# How people pay, with their share of baskets.
PAYMENT_METHODS = {
    "credit_card": 0.38,
    "debit_card": 0.27,
    "mobile_wallet": 0.17,
    "cash": 0.14,
    "gift_card": 0.04,
}

# Share of a day's baskets per UTC hour: closed overnight, lunch and after-work peaks.
HOURLY_TRAFFIC = [
    0, 0, 0, 0, 0, 0, 0, 2, 4, 5, 6, 7,
    9, 8, 6, 6, 7, 9, 10, 8, 6, 4, 3, 0,
]  # fmt: skip

# Units per line: mostly one, sometimes a few.
QUANTITY_SHARES = {1: 0.74, 2: 0.15, 3: 0.05, 4: 0.03, 6: 0.02, 12: 0.01}
