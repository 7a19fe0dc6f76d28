"""The rental service layer: handlers that take a UnitOfWork and an actor, run by `RentalService.run`.

Callers (the HTTP API, the web UI, the command worker) never touch the database themselves:

    svc.run(rentals.submit_application, actor, house_id, ApplicationCreate(...))
    svc.search(HouseQuery(city="Lyon"))
"""
